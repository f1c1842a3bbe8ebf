using System.Diagnostics;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>The outcome of <see cref="Pretrainer.Fit(ImageStore, IProgress{PretrainProgress}?, CancellationToken)"/>.</summary>
public sealed class PretrainResult
{
    internal PretrainResult(PretrainingMethod method, TrainingHistory history, CheckpointInfo info, double viewsPerSecond)
    {
        Method = method;
        Encoder = method.Encoder;
        History = history;
        Info = info;
        ViewsPerSecond = viewsPerSecond;
    }

    /// <summary>The pretrained encoder, in eval mode, on the CPU.</summary>
    public ImageEncoder Encoder { get; }

    /// <summary>The trained method: the encoder with the method's heads (e.g. both towers of <see cref="Clip"/>), in eval mode, on the CPU.</summary>
    public PretrainingMethod Method { get; }

    /// <summary>Loss and learning rate per step, per-epoch summaries and monitors.</summary>
    public TrainingHistory History { get; }

    /// <summary>What the checkpoint records: settings, image shape and position.</summary>
    internal CheckpointInfo Info { get; }

    /// <summary>The run's settings, with the method's as resolved for the data (e.g. the class count of <c>supervised</c>).</summary>
    public PretrainOptions Options => Info.Options;

    /// <summary>Optimizer steps done in all, resumed ones included.</summary>
    public int Steps => Info.GlobalStep;

    /// <summary>Where the starting weights came from (<see cref="PretrainedEncoder.Source"/>); null for a random start.</summary>
    public string? InitializedFrom => Info.InitializedFrom;

    /// <summary>Complete passes over the data (a time budget can stop the run mid-epoch).</summary>
    public int Epochs => Info.Epoch;

    /// <summary>Channels, height and width of the images the run trained on.</summary>
    public (int Channels, int Height, int Width) ImageShape => (Info.Channels, Info.Height, Info.Width);

    /// <summary>Augmented views per second over this run's steps.</summary>
    public double ViewsPerSecond { get; }
}

/// <summary>
/// The pretraining loop: shuffled batches from an <see cref="ImageStore"/>, the method's step lifecycle, AdamW, SGD or
/// LARS with warm-up + cosine learning rate, a checkpoint per epoch, resumable.
/// </summary>
public sealed class Pretrainer
{
    private readonly PretrainOptions options;
    private readonly MLContext mlContext;

    /// <summary>A trainer for <paramref name="options"/> (copied: later changes to the caller's object do not reach it).</summary>
    public Pretrainer(PretrainOptions options, MLContext? mlContext = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options.Clone();
        this.mlContext = mlContext ?? new MLContext(options.Run.Seed);
    }

    /// <summary>Pretrains on <paramref name="data"/> until the budget is spent; a cancelled run keeps its last checkpoint and throws <see cref="OperationCanceledException"/>.</summary>
    public PretrainResult Fit(ImageStore data, IProgress<PretrainProgress>? progress = null, CancellationToken cancellation = default)
    {
        using var session = Start(data);
        var info = session.Info;
        var (batchSize, stepsPerEpoch) = (options.Run.BatchSize, session.StepsPerEpoch);
        // The monitors hear every epoch first, then the caller's callbacks.
        var callbacks = new List<IEpochCallback>();
        if (TrainingMonitor.For(options, data, session.Views, session.Report) is { } monitor) callbacks.Add(monitor);
        callbacks.AddRange(options.EpochCallbacks);
        var totalSteps = options.Run.Minutes is null ? options.Epochs * stepsPerEpoch : (int?)null;
        var budget = options.Run.Minutes is { } minutes ? TimeSpan.FromMinutes(minutes) : (TimeSpan?)null;

        var clock = Stopwatch.StartNew();
        var resumedSeconds = info.ElapsedSeconds;
        var viewsThisRun = 0L;
        double Elapsed() => resumedSeconds + clock.Elapsed.TotalSeconds;
        // Data-parallel ranks must stop, cancel and schedule the learning rate together, or one would wait forever in a
        // collective the others left: every Done() agrees on the mean of their clocks and on whether any was cancelled.
        var parallel = options.DataParallel;
        var (agreedSeconds, anyCancelled) = (resumedSeconds, false);
        double Clock() => parallel is null ? Elapsed() : agreedSeconds;
        bool Cancelled() => parallel is null ? cancellation.IsCancellationRequested || HostCancelled() : anyCancelled;
        double Progress() => budget is { } b ? Clock() / b.TotalSeconds : (double)info.GlobalStep / totalSteps!.Value;
        bool Done()
        {
            if (parallel is not null) (agreedSeconds, anyCancelled) = session.Agree(Elapsed(), cancellation.IsCancellationRequested || HostCancelled());
            return budget is { } b ? Clock() >= b.TotalSeconds : info.GlobalStep >= totalSteps!.Value;
        }

        // Each rank trains on its contiguous slice of every global batch.
        var (rank, ranks) = (parallel?.Rank ?? 0, parallel?.WorldSize ?? 1);
        var indices = new int[batchSize / ranks];
        var (cancelled, stopped) = (false, false);
        while (!Done() && !cancelled && !stopped)
        {
            var epoch = info.Epoch + 1;
            var order = Permutation(data.Count, options.Run.Seed, epoch);
            var epochClock = Stopwatch.StartNew();
            var epochLosses = new List<double>();
            var epochViews = 0L;
            while (info.StepInEpoch < stepsPerEpoch && !Done())
            {
                if (cancelled = Cancelled()) break;
                Array.Copy(order, info.StepInEpoch * batchSize + rank * indices.Length, indices, 0, indices.Length);
                var (loss, learningRate, rankViews) = session.Step(indices, Math.Min(Progress(), 1), epoch);
                var views = rankViews * ranks;
                info.StepInEpoch++;
                info.GlobalStep++;
                viewsThisRun += views;
                epochViews += views;
                epochLosses.Add(loss);
                info.History.Steps.Add(new StepRecord(info.GlobalStep, epoch, loss, learningRate, Elapsed(), session.Method.StepMonitors?.ToDictionary()));
                var viewsPerSecond = viewsThisRun / clock.Elapsed.TotalSeconds;
                var remaining = Progress() is var p and > 0 ? TimeSpan.FromSeconds(Clock() * (1 - Math.Min(p, 1)) / p) : TimeSpan.Zero;
                progress?.Report(new PretrainProgress(epoch, info.GlobalStep, stepsPerEpoch, Math.Min(Progress(), 1), loss,
                    learningRate, viewsPerSecond, TimeSpan.FromSeconds(Elapsed()), remaining));
            }

            if (epochLosses.Count > 0)
            {
                var seconds = epochClock.Elapsed.TotalSeconds;
                info.History.Epochs.Add(new EpochRecord(epoch, epochLosses.Count, epochLosses.Average(), seconds,
                    epochViews / seconds));
                session.Log($"Epoch {epoch}: {epochLosses.Count} steps, mean loss {epochLosses.Average():F4}, {seconds:F1} s.");
            }
            if (info.StepInEpoch == stepsPerEpoch)
            {
                info.Epoch = epoch;
                info.StepInEpoch = 0;
                if (callbacks.Count > 0)
                {
                    // Monitoring and validation are not training: they spend none of the time budget and do not count in views/s.
                    clock.Stop();
                    // Every callback hears every epoch, even after one asked to stop.
                    foreach (var callback in callbacks)
                    {
                        session.Method.train();
                        stopped |= callback.AfterEpoch(session.Method, epoch);
                    }
                    session.Method.train();
                    clock.Start();
                }
            }
            info.ElapsedSeconds = Elapsed();
            session.CheckWeights(epoch);
            session.SaveCheckpoint();
        }
        // No step at all (0 epochs from an initialization): the checkpoint holds the initial weights unchanged.
        if (info.GlobalStep == 0 && !cancelled) session.SaveCheckpoint();
        // The budget check that ended the loop came after the last checkpoint's write; report the time it saw.
        info.ElapsedSeconds = Elapsed();
        // The checkpoint above holds every finished step, so a cancelled run resumes where it stopped.
        if (cancelled)
            throw new OperationCanceledException(options.CheckpointPath is { } path
                ? $"Pretraining was cancelled after step {info.GlobalStep}; {path} holds every finished step (PretrainOptions.Resume continues from it)."
                : $"Pretraining was cancelled after step {info.GlobalStep}.", cancellation);

        var method = session.Method;
        method.eval();
        method.to(CPU);
        var runViewsPerSecond = viewsThisRun / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        return new PretrainResult(method, info.History, info, runViewsPerSecond);
    }

    /// <summary>
    /// Sets up a run on <paramref name="data"/>: the method around a new encoder (or the checkpoint's, when resuming),
    /// its optimizer and the seeded generator, in training mode on the run's device.
    /// </summary>
    internal TrainingSession Start(ImageStore data)
    {
        TorchRuntime.Initialize();
        TorchRuntime.SetThreads(options.Run.Threads);
        var device = ResolveDevice(options.Run.Device);
        var stepsPerEpoch = data.Count / options.Run.BatchSize;
        if (stepsPerEpoch == 0)
            throw new ArgumentException(
                $"The batch size {options.Run.BatchSize} is larger than the dataset ({data.Count} images); lower the batch size to at most {data.Count}.");

        var channel = ((IHostEnvironment)mlContext).Start($"{options.Method.Name} pretraining");
        try
        {
            var resume = options.Resume && File.Exists(options.CheckpointPath);
            var stored = resume ? Checkpoint.ReadInfo(options.CheckpointPath!) : null;
            // Defaults that depend on the Initialization are fixed at the start and recorded in the checkpoint: a resumed
            // run, which takes no Initialization, keeps the learning rate and warm-up it started with.
            options.Run.LearningRate ??= stored?.Options.Run.LearningRate ?? options.PeakLearningRate;
            options.WarmupFraction ??= stored?.Options.WarmupFraction ?? options.Warmup;
            var info = stored ?? NewInfo(data);
            if (info.Channels != data.Channels || info.Height != data.Height || info.Width != data.Width)
                throw new ArgumentException(
                    $"{options.CheckpointPath}: the checkpoint was trained on {info.Channels}×{info.Height}×{info.Width} images; this data is {data.Channels}×{data.Height}×{data.Width}.");
            if (resume && !string.Equals(info.Options.Method.Name, options.Method.Name, StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"{options.CheckpointPath}: the checkpoint is for method '{info.Options.Method.Name}', not '{options.Method.Name}'.");
            // The position inside an epoch counts batches of the checkpoint's size.
            if (resume && info.Options.Run.BatchSize != options.Run.BatchSize)
                throw new ArgumentException(
                    $"{options.CheckpointPath}: the checkpoint was trained at batch size {info.Options.Run.BatchSize}; resume with that batch size, not {options.Run.BatchSize}.");
            if (options.Resume && !resume)
                channel.Info(MessageSensitivity.None, "{0}", $"No checkpoint at {options.CheckpointPath}: starting a new run.");
            // Batches are sliced from the global order, so another number of ranks continues the same run.
            var ranks = options.DataParallel?.WorldSize ?? 1;
            if (resume && info.Ranks != ranks)
                channel.Info(MessageSensitivity.None, "{0}", $"{options.CheckpointPath} was written by {info.Ranks} process{(info.Ranks == 1 ? "" : "es")}; " +
                    $"continuing on {ranks}, {options.Run.BatchSize / ranks} images of each global batch of {options.Run.BatchSize} per process.");
            info.Ranks = ranks;

            manual_seed(options.Run.Seed);
            var views = options.Augmentation ?? AugmentationOptions.ForImageSize(data.Height, data.Width);
            var encoder = ImageEncoder.Create(info.Encoder);
            // Before the method is built: moving-average targets start as copies of the encoder.
            if (!resume && options.Initialization is not null)
            {
                options.Initialization.CopyTo(encoder);
                if (options.ReestimateBatchNorm ?? (options.Run.Minutes is not null || options.Epochs > 0))
                {
                    var layers = BatchNormStatistics.Reestimate(encoder, data, seed: options.Run.Seed);
                    if (layers > 0)
                        channel.Info(MessageSensitivity.None, "{0}", $"Re-estimated the batch-norm statistics of {layers} layers of {options.Initialization.Source} on {Math.Min(data.Count, BatchNormStatistics.DefaultImages):N0} of these images.");
                }
            }
            var method = info.Options.Method.CreateMethod(encoder, new MethodSetup(views, data.LabelNames?.Count ?? 0, options.Run.Seed, data.Pairs, data.Count, (data.Channels, data.Height, data.Width)));
            info.Options.Method = method.Options;
            if (method.RequiresPairs && data.Pairs is null)
                throw new ArgumentException($"The {options.Method.Name} run needs a caption or a second image for every image (ImageStore.WithPairs; the CLI's --captions or --paired-data); these images have none.");
            if (options.ChunkSize is { } chunk && chunk < options.Run.BatchSize && method is not IEmbeddingObjective)
                throw new ArgumentException(
                    $"Gradient caching (chunk size {chunk}) needs a method whose loss couples the batch only through embeddings " +
                    $"(simclr, moco, nce, triplet, barlow, vicreg, clip); {options.Method.Name} is not one. Use a batch that fits in memory instead.",
                    nameof(PretrainOptions.ChunkSize));
            if (options.DataParallel is { WorldSize: > 1 } group)
                channel.Info(MessageSensitivity.None, "{0}", GlobalBatch.RanksFor(options, method) is not null
                    ? $"{options.Method.Name}'s loss takes every rank's embeddings: {group.WorldSize} ranks train the objective of the global batch of {options.Run.BatchSize}."
                    : $"{options.Method.Name}'s loss couples each rank's {options.Run.BatchSize / group.WorldSize} images (its own slice); the gradients are averaged over the ranks.");
            method.to(device);
            var optimizer = new TrainingOptimizer(method.ParameterGroups(), options);
            var parallel = options.DataParallel;
            var rank = parallel?.Rank ?? 0;
            // Every rank draws from the same stream, as one process would: each keeps its slice of every per-sample draw
            // (SampleDraws), so the views do not depend on the number of ranks.
            var generator = new Generator((ulong)options.Run.Seed);
            if (resume)
            {
                Checkpoint.LoadTrainingState(options.CheckpointPath!, method, optimizer, generator);
                channel.Info(MessageSensitivity.None, "{0}", $"Resuming from {options.CheckpointPath} at epoch {info.Epoch + 1}, step {info.GlobalStep + 1}.");
            }
            // Every rank starts from rank 0's weights and buffers (integer buffers, such as batch norm's counts, agree already).
            parallel?.Broadcast(method.state_dict().Values.Where(t => t.dtype == ScalarType.Float32).ToList());
            method.train();
            // Loading the images leaves garbage on the managed heap and free pages in malloc's, and the first collection of
            // the steps comes only after StepsPerCollection of them: let both go before the first step adds its peak.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            NativeHeap.Trim();
            return new TrainingSession(options, data, method, optimizer, generator, info, device, channel, new ViewAugmenter(views));
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }

    // MLContext.CancelExecution (called by AutoML and Microsoft.ML.Experimental) cancels the context's environment, whose
    // ICancelable.IsCanceled ML.NET's own trainers check every step. Both are internal to ML.NET, so they are read by
    // reflection; should ML.NET rename them, host cancellation is not seen and the CancellationToken still works.
    private static readonly FieldInfo? ContextEnvironment = typeof(MLContext).GetField("_env", BindingFlags.NonPublic | BindingFlags.Instance);
    private static readonly PropertyInfo? IsCanceled = ContextEnvironment?.FieldType.GetInterface("Microsoft.ML.Runtime.ICancelable")?.GetProperty("IsCanceled");

    /// <summary>Whether the ML.NET host of this run was cancelled.</summary>
    private bool HostCancelled() => IsCanceled is not null && ContextEnvironment!.GetValue(mlContext) is { } environment && IsCanceled.GetValue(environment) is true;

    private CheckpointInfo NewInfo(ImageStore data)
    {
        var initialization = options.Initialization;
        var encoder = options.Encoder ?? initialization?.EncoderOptions.Clone() ?? EncoderOptions.For(data.Channels, Math.Max(data.Height, data.Width));
        if (encoder.InputChannels != data.Channels)
            throw new ArgumentException(initialization is null
                ? $"The encoder takes {encoder.InputChannels} channels but the images have {data.Channels}."
                : $"{initialization.Source}: the pretrained encoder takes {encoder.InputChannels}-channel images but these images have {data.Channels} channel{(data.Channels == 1 ? "" : "s")}.");
        return new CheckpointInfo
        {
            Options = options.Clone(), Encoder = encoder, Channels = data.Channels, Height = data.Height, Width = data.Width,
            InitializedFrom = initialization?.Source,
        };
    }

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

/// <summary>
/// One run in progress: the method, its optimizer and generator on the run's device. <see cref="Step"/> is one
/// optimizer step; <see cref="Pretrainer.Fit(ImageStore, IProgress{PretrainProgress}?, CancellationToken)"/> adds the epochs, budget, monitors and checkpoints around it, and
/// build/Bench's profile times its phases.
/// </summary>
internal sealed class TrainingSession : IDisposable
{
    /// <summary>
    /// Steps between garbage collections. TorchSharp hands out some tensors that no dispose scope owns; their native
    /// memory goes back only when their finalizers run, which the no-GC pause of every step holds off. With BYOL's and
    /// MoCo's moving-average targets that grew native memory by about 1 GiB a minute (10 GiB at the end of a 10-minute
    /// run on Fashion-MNIST); a collection every 10 steps keeps BYOL flat at 1.4 GiB, for no measurable time per step.
    /// </summary>
    private const int StepsPerCollection = 10;

    /// <summary>
    /// Steps whose views take at least this many bytes return malloc's free pages after each step (<see cref="NativeHeap.Trim"/>):
    /// at 64 and 96 px RGB that lowered peak memory by 0.2 and 0.6 GiB at the same speed; at 28 px gray (1.6 MB of views)
    /// it cost 17–20 % of the speed for 0.15 GiB.
    /// </summary>
    private const long LargeStepBytes = 16 << 20;

    private readonly bool trimAfterEachStep;

    /// <summary>The ranks whose embeddings the loss gathers (<see cref="GlobalBatch.RanksFor"/>); null: this rank's slice only.</summary>
    private readonly IDataParallel? gatherRanks;

    private readonly PretrainOptions options;
    private int stepsSinceCollection;
    private readonly ImageStore data;
    private readonly TrainingOptimizer optimizer;
    private readonly Generator generator;
    private readonly Device device;
    private readonly IChannel channel;

    public TrainingSession(PretrainOptions options, ImageStore data, PretrainingMethod method, TrainingOptimizer optimizer, Generator generator,
        CheckpointInfo info, Device device, IChannel channel, ViewAugmenter views)
    {
        (this.options, this.data, Method, this.optimizer, this.generator, Info, this.device, this.channel, Views) =
            (options, data, method, optimizer, generator, info, device, channel, views);
        // A loss that couples the batch through its embeddings is computed on every rank's (GlobalBatch): the global batch's.
        gatherRanks = GlobalBatch.RanksFor(options, method);
        trimAfterEachStep = (long)options.Run.BatchSize * method.ViewsPerImage * data.Channels * data.Height * data.Width * sizeof(float) >= LargeStepBytes;
    }

    public PretrainingMethod Method { get; }
    public CheckpointInfo Info { get; }

    /// <summary>The run's base view recipe (the monitors' alignment uses it).</summary>
    public ViewAugmenter Views { get; }

    public int StepsPerEpoch => data.Count / options.Run.BatchSize;

    /// <summary>
    /// One step on the images at <paramref name="indices"/>: loss → (refused if not finite, before any weight changes) →
    /// backward → AfterBackward → optimizer → AfterStep, in one dispose scope and one pause of the garbage collector.
    /// <paramref name="mark"/> hears the end of each phase: views, encoder, loss, backward, optimizer. A gradient-cached
    /// step, or one with large views, then hands its freed memory back to the system (<see cref="NativeHeap.Trim"/>): what
    /// their tensors leave in malloc's heap would otherwise pile up.
    /// </summary>
    public (double Loss, double LearningRate, long Views) Step(int[] indices, double progress, int epoch, Action<string>? mark = null)
    {
        var chunked = options.ChunkSize is { } chunk && chunk < indices.Length;
        var result = StepInScope(indices, progress, epoch, mark, chunked);
        if (chunked || trimAfterEachStep) NativeHeap.Trim();
        return result;
    }

    private (double Loss, double LearningRate, long Views) StepInScope(int[] indices, double progress, int epoch, Action<string>? mark, bool chunked)
    {
        if (++stepsSinceCollection == StepsPerCollection)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            stepsSinceCollection = 0;
        }
        var learningRate = LearningRateSchedule.At(progress, options.PeakLearningRate, options.Warmup);
        optimizer.SetLearningRate(learningRate);
        if (options.WeightDecayEnd is not null) optimizer.SetWeightDecay(LearningRateSchedule.WeightDecayAt(progress, options.Run.WeightDecay, options.WeightDecayEnd));
        using var pause = CollectionPause.Begin();
        using var scope = NewDisposeScope();
        using var synchronized = SyncBatchNorm.Synchronize(options.SynchronizeBatchNorm ? options.DataParallel : null);
        using var draws = options.DataParallel is { WorldSize: > 1 } group ? SampleDraws.Split(group.Rank, group.WorldSize, indices.Length) : null;
        var batch = data.Batch(indices, device);
        var labels = Method.RequiresLabels ? data.BatchLabels(indices, device) : null;
        var pairs = Method.RequiresPairs ? data.Pairs!.Batch(indices, device) : null;
        var context = new StepContext(generator, progress, epoch, Info.GlobalStep + 1, labels, mark, pairs, indices,
            options.DataParallel is { WorldSize: > 1 } ranks ? ranks : null);
        var (lossTensor, backward) = chunked
            ? GradientCache.Loss(Method, batch, context, options.ChunkSize!.Value, gatherRanks)
            : Plain(gatherRanks is null ? Method.Loss(batch, context) : GlobalBatch.Loss((IEmbeddingObjective)Method, batch, context, gatherRanks));
        // A gradient-cached step has drawn its views and needs the batch's pixels no more (0.15 GB at 256 × 224 px RGB).
        if (chunked) batch.Dispose();
        var loss = lossTensor.item<float>();
        mark?.Invoke("loss");
        if (!float.IsFinite(loss))
            throw new InvalidOperationException(
                $"The loss became {loss} at step {Info.GlobalStep + 1}; the step was not applied. Lower the learning rate (now {learningRate:G3}) or change the method's settings.");
        optimizer.ZeroGrad();
        backward();
        mark?.Invoke("backward");
        if (options.DataParallel is { } parallel) loss = Average(parallel, loss);
        Method.AfterBackward(context);
        if (!AllFinite(optimizer.Parameters.Where(p => p.grad is not null).Select(p => p.grad!)))
            throw new InvalidOperationException(
                $"The gradients became NaN or infinite at step {Info.GlobalStep + 1}; the step was not applied. Lower the learning rate (now {learningRate:G3}).");
        optimizer.Step();
        Method.AfterStep(context);
        // Finite gradients can still overflow a weight at a huge learning rate; stop before anything saves it.
        if (FiniteWeights.FirstNonFinite(Method) is { } name)
            throw new InvalidOperationException(
                $"The weights became NaN or infinite at step {Info.GlobalStep + 1} (first: '{name}'); the checkpoint keeps the last finite ones. Lower the learning rate (now {learningRate:G3}).");
        mark?.Invoke("optimizer");
        return (loss, learningRate, Method.ViewsInStep(indices.Length, context));
    }

    /// <summary>
    /// Averages the gradients over the data-parallel ranks in one exchange, with the loss riding along so that every rank
    /// reports the global batch's; returns that loss. A gradient that is null stays null (the same parameters have none on every rank).
    /// </summary>
    private float Average(IDataParallel parallel, float loss)
    {
        var lossValue = tensor(new[] { loss }, device: device);
        parallel.Average([.. optimizer.Parameters.Where(p => p.grad is not null).Select(p => p.grad!), lossValue]);
        return lossValue.item<float>();
    }

    /// <summary>
    /// The ranks' mean clock and whether any rank was cancelled, in one exchange: every rank stops at the same step and
    /// sees the same schedule position.
    /// </summary>
    public (double Seconds, bool AnyCancelled) Agree(double seconds, bool cancelled)
    {
        using var scope = NewDisposeScope();
        var values = tensor(new[] { (float)seconds, cancelled ? 1f : 0f });
        options.DataParallel!.Average([values]);
        var agreed = values.data<float>().ToArray();
        return (agreed[0], agreed[1] > 0);
    }

    private static (Tensor Loss, Action Backward) Plain(Tensor loss) => (loss, () => loss.backward());

    /// <summary>
    /// Throws when the weights are not fit to save: a weight or buffer NaN or infinite, or finite weights so large
    /// (a diverged run) that the encoder's embedding of a few training images in eval mode is not finite. Called before
    /// every checkpoint, so that the last one on disk is always usable.
    /// </summary>
    public void CheckWeights(int epoch)
    {
        if (FiniteWeights.FirstNonFinite(Method) is { } name)
            throw new InvalidOperationException(
                $"The weights became NaN or infinite in epoch {epoch} (first: '{name}'); the checkpoint keeps the last finite ones. Lower the learning rate.");
        using var pause = CollectionPause.Begin();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var training = Method.training;
        Method.Encoder.eval();
        try
        {
            var indices = Enumerable.Range(0, Math.Min(EmbeddingCheckImages, data.Count)).ToArray();
            if (!Method.Encoder.Embed(data.Batch(indices, device)).isfinite().all().item<bool>())
                throw new InvalidOperationException(
                    $"The weights at the end of epoch {epoch} give NaN or infinite embeddings (the training diverged); the checkpoint keeps the last good ones. Lower the learning rate.");
        }
        finally
        {
            Method.Encoder.train(training);
        }
    }

    /// <summary>Training images the encoder embeds before a checkpoint is saved (<see cref="CheckWeights"/>).</summary>
    private const int EmbeddingCheckImages = 8;

    private static bool AllFinite(IEnumerable<Tensor> tensors)
    {
        var checks = tensors.Select(t => t.isfinite().all()).ToArray();
        return checks.Length == 0 || stack(checks).all().item<bool>();
    }

    /// <summary>Keeps a monitor result in the history, logs it (a warning on collapse) and passes it to <see cref="PretrainOptions.OnMonitor"/>.</summary>
    public void Report(MonitorRecord record)
    {
        Info.History.Monitors.Add(record);
        Log($"Epoch {record.Epoch} monitors: {record.Describe()}.");
        if (record.Collapsed) channel.Warning(MessageSensitivity.None, "{0}", record.CollapseWarning());
        options.OnMonitor?.Invoke(record);
    }

    public void SaveCheckpoint()
    {
        // Data-parallel ranks hold the same weights: rank 0 alone writes them.
        if (options.CheckpointPath is not null && (options.DataParallel?.Rank ?? 0) == 0) Checkpoint.Save(options.CheckpointPath, Info, Method, optimizer, generator);
    }

    public void Log(string message) => channel.Info(MessageSensitivity.None, "{0}", message);

    public void Dispose()
    {
        generator.Dispose();
        channel.Dispose();
    }
}
