using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>The outcome of <see cref="Pretrainer.Fit"/>.</summary>
public sealed class PretrainResult
{
    internal PretrainResult(ResNetEncoder encoder, TrainingHistory history, CheckpointInfo info, double viewsPerSecond)
    {
        Encoder = encoder;
        History = history;
        Info = info;
        ViewsPerSecond = viewsPerSecond;
    }

    /// <summary>The pretrained encoder, in eval mode, on the CPU.</summary>
    public ResNetEncoder Encoder { get; }
    public TrainingHistory History { get; }
    public CheckpointInfo Info { get; }

    /// <summary>Augmented views per second over this run's steps.</summary>
    public double ViewsPerSecond { get; }
}

/// <summary>
/// The pretraining loop: shuffled batches from an <see cref="ImageStore"/>, the method's loss, AdamW or SGD with
/// warm-up + cosine learning rate, one dispose scope per step, a checkpoint per epoch, resumable.
/// </summary>
public sealed class Pretrainer
{
    private readonly PretrainOptions options;
    private readonly MLContext mlContext;

    public Pretrainer(PretrainOptions options, MLContext? mlContext = null)
    {
        options.Validate();
        this.options = options;
        this.mlContext = mlContext ?? new MLContext(options.Seed);
    }

    public PretrainResult Fit(ImageStore data, IProgress<PretrainProgress>? progress = null, CancellationToken cancellation = default)
    {
        TorchRuntime.Initialize();
        TorchRuntime.SetThreads(options.Threads);
        var device = ResolveDevice(options.Device);
        var stepsPerEpoch = data.Count / options.BatchSize;
        if (stepsPerEpoch == 0)
            throw new ArgumentException(
                $"The batch size {options.BatchSize} is larger than the dataset ({data.Count} images); lower the batch size to at most {data.Count}.");

        using var channel = ((IHostEnvironment)mlContext).Start($"{options.Method} pretraining");
        var resume = options.Resume && File.Exists(options.CheckpointPath);
        var info = resume ? Checkpoint.ReadInfo(options.CheckpointPath!) : NewInfo(data);
        if (info.Channels != data.Channels || info.Height != data.Height || info.Width != data.Width)
            throw new ArgumentException(
                $"{options.CheckpointPath}: the checkpoint was trained on {info.Channels}×{info.Height}×{info.Width} images; this data is {data.Channels}×{data.Height}×{data.Width}.");
        if (resume && !string.Equals(info.Options.Method, options.Method, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{options.CheckpointPath}: the checkpoint is for method '{info.Options.Method}', not '{options.Method}'.");

        manual_seed(options.Seed);
        var method = PretrainingMethods.Create(options.Method, new ResNetEncoder(info.Encoder), info.Options, data.LabelNames?.Count ?? 0);
        method.to(device);
        var optimizer = CreateOptimizer(method);
        using var generator = new Generator((ulong)options.Seed);
        if (resume)
        {
            Checkpoint.LoadTrainingState(options.CheckpointPath!, method, optimizer, generator);
            channel.Info(MessageSensitivity.None, "{0}", $"Resuming from {options.CheckpointPath} at epoch {info.Epoch + 1}, step {info.GlobalStep + 1}.");
        }
        var augmenter = new ViewAugmenter(options.Augmentation ?? AugmentationOptions.ForImageSize(data.Height, data.Width));
        var monitor = options.MonitorEvery > 0 ? TrainingMonitor.For(options, data, augmenter) : null;
        var totalSteps = options.Minutes is null ? options.Epochs * stepsPerEpoch : (int?)null;
        var budget = options.Minutes is { } minutes ? TimeSpan.FromMinutes(minutes) : (TimeSpan?)null;

        var clock = Stopwatch.StartNew();
        var resumedSeconds = info.ElapsedSeconds;
        var stepsThisRun = 0;
        double Elapsed() => resumedSeconds + clock.Elapsed.TotalSeconds;
        double Progress() => budget is { } b ? Elapsed() / b.TotalSeconds : (double)info.GlobalStep / totalSteps!.Value;
        bool Done() => budget is { } b ? Elapsed() >= b.TotalSeconds : info.GlobalStep >= totalSteps!.Value;

        method.train();
        var indices = new int[options.BatchSize];
        var cancelled = false;
        while (!Done() && !cancelled)
        {
            var epoch = info.Epoch + 1;
            var order = Permutation(data.Count, options.Seed, epoch);
            var epochClock = Stopwatch.StartNew();
            var epochLosses = new List<double>();
            while (info.StepInEpoch < stepsPerEpoch && !Done())
            {
                if (cancelled = cancellation.IsCancellationRequested) break;
                Array.Copy(order, info.StepInEpoch * options.BatchSize, indices, 0, options.BatchSize);
                var learningRate = LearningRateSchedule.At(Progress(), options.PeakLearningRate, options.WarmupFraction);
                foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate;

                double loss;
                using (CollectionPause.Begin())
                using (NewDisposeScope())
                {
                    var batch = data.Batch(indices, device);
                    var labels = method.RequiresLabels ? data.BatchLabels(indices, device) : null;
                    var lossTensor = method.Loss(batch, labels, augmenter, generator);
                    optimizer.zero_grad();
                    lossTensor.backward();
                    optimizer.step();
                    loss = lossTensor.item<float>();
                }
                if (!double.IsFinite(loss))
                    throw new InvalidOperationException(
                        $"The loss became {loss} at step {info.GlobalStep + 1}; lower the learning rate (now {learningRate:G3}) or raise the temperature.");

                info.StepInEpoch++;
                info.GlobalStep++;
                stepsThisRun++;
                epochLosses.Add(loss);
                info.History.Steps.Add(new StepRecord(info.GlobalStep, epoch, loss, learningRate, Elapsed()));
                var viewsPerSecond = stepsThisRun * options.BatchSize * method.ViewsPerImage / clock.Elapsed.TotalSeconds;
                var remaining = Progress() is var p and > 0 ? TimeSpan.FromSeconds(Elapsed() * (1 - Math.Min(p, 1)) / p) : TimeSpan.Zero;
                progress?.Report(new PretrainProgress(epoch, info.GlobalStep, stepsPerEpoch, Math.Min(Progress(), 1), loss,
                    learningRate, viewsPerSecond, TimeSpan.FromSeconds(Elapsed()), remaining));
            }

            var finished = info.StepInEpoch == stepsPerEpoch;
            if (epochLosses.Count > 0)
            {
                var seconds = epochClock.Elapsed.TotalSeconds;
                info.History.Epochs.Add(new EpochRecord(epoch, epochLosses.Count, epochLosses.Average(), seconds,
                    epochLosses.Count * options.BatchSize * method.ViewsPerImage / seconds));
                channel.Info(MessageSensitivity.None, "{0}", $"Epoch {epoch}: {epochLosses.Count} steps, mean loss {epochLosses.Average():F4}, {seconds:F1} s.");
            }
            if (finished)
            {
                info.Epoch = epoch;
                info.StepInEpoch = 0;
                if (monitor is not null && epoch % options.MonitorEvery == 0)
                {
                    // Monitoring is not training: it spends none of the time budget and does not count in views/s.
                    clock.Stop();
                    Monitor(monitor, method.Encoder, epoch, info.History, channel);
                    clock.Start();
                }
            }
            info.ElapsedSeconds = Elapsed();
            if (options.CheckpointPath is not null) Checkpoint.Save(options.CheckpointPath, info, method, optimizer, generator);
        }
        // The checkpoint above holds every finished step, so a cancelled run resumes where it stopped.
        cancellation.ThrowIfCancellationRequested();

        method.eval();
        method.to(CPU);
        var runViewsPerSecond = stepsThisRun * options.BatchSize * method.ViewsPerImage / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        return new PretrainResult(method.Encoder, info.History, info, runViewsPerSecond);
    }

    private void Monitor(TrainingMonitor monitor, ResNetEncoder encoder, int epoch, TrainingHistory history, IChannel channel)
    {
        var record = monitor.Measure(encoder, epoch);
        history.Monitors.Add(record);
        channel.Info(MessageSensitivity.None, "{0}", $"Epoch {epoch} monitors: kNN {record.KnnAccuracy:P2}, std of normalised embeddings " +
            $"{record.StdOfNormalized:F4} (1/√D = {record.ExpectedStd:F4}), effective rank {record.EffectiveRank:F1}, " +
            $"uniformity {record.Uniformity:F3}, alignment {record.Alignment:F3}.");
        if (record.Collapsed)
            channel.Warning(MessageSensitivity.None, "{0}", $"Epoch {epoch}: the encoder has collapsed (std {record.StdOfNormalized:G3} vs 1/√D " +
                $"{record.ExpectedStd:G3}, effective rank {record.EffectiveRank:F1}); lower the learning rate or change the method's settings.");
        options.OnMonitor?.Invoke(record);
    }

    private CheckpointInfo NewInfo(ImageStore data)
    {
        var encoder = options.Encoder ?? EncoderOptions.For(data.Channels, Math.Max(data.Height, data.Width));
        if (encoder.InputChannels != data.Channels)
            throw new ArgumentException($"The encoder takes {encoder.InputChannels} channels but the images have {data.Channels}.");
        return new CheckpointInfo
        {
            Options = options, Encoder = encoder, Channels = data.Channels, Height = data.Height, Width = data.Width,
        };
    }

    private OptimizerHelper CreateOptimizer(PretrainingMethod method) => options.Optimizer switch
    {
        OptimizerKind.AdamW => optim.AdamW(method.parameters(), options.PeakLearningRate, weight_decay: options.WeightDecay),
        OptimizerKind.Sgd => optim.SGD(method.parameters(), options.PeakLearningRate, momentum: options.Momentum, weight_decay: options.WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(options.Optimizer), options.Optimizer, "Unknown optimizer."),
    };

    /// <summary>The epoch's image order, a pure function of seed and epoch so that a resumed run sees the same batches.</summary>
    internal static int[] Permutation(int count, int seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(unchecked(seed * 1_000_003 + epoch)).Shuffle(order);
        return order;
    }

    internal static Device ResolveDevice(string device) => device switch
    {
        "cpu" => CPU,
        "cuda" => cuda.is_available() ? CUDA : throw new InvalidOperationException("Device 'cuda' was asked for, but libtorch reports no CUDA device (this build of TorchSharp may be CPU-only)."),
        _ => cuda.is_available() ? CUDA : CPU,
    };
}
