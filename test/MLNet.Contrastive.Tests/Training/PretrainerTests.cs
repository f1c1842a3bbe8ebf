using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Training;

public class PretrainerTests
{
    private static PretrainOptions Options(int epochs, string? checkpoint = null, bool resume = false) => new()
    {
        Run = { Epochs = epochs, BatchSize = 128, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 3e-3 }, WarmupFraction = 0.1,
        Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        CheckpointPath = checkpoint, Resume = resume,
    };

    [Test]
    public void ShortRunOnRealImagesLowersTheLoss()
    {
        var data = TestData.SampleTrain(512);
        var reports = new List<PretrainProgress>();
        var result = new Pretrainer(Options(epochs: 6)).Fit(data, new SynchronousProgress(reports.Add));

        Assert.That(result.Info.GlobalStep, Is.EqualTo(6 * 4));
        Assert.That(result.History.Epochs, Has.Count.EqualTo(6));
        var first = result.History.Epochs[0].MeanLoss;
        var last = result.History.Epochs[^1].MeanLoss;
        Assert.That(last, Is.LessThan(first - 0.2), $"mean loss went from {first:F3} to {last:F3}");
        Assert.That(reports.Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, 24)));
        Assert.That(reports[^1].Progress, Is.EqualTo(1.0).Within(1e-9));
        Assert.That(reports.All(r => r.ViewsPerSecond > 0 && double.IsFinite(r.Loss)), Is.True);
    }

    private sealed class Recorder(int stopAfter) : IEpochCallback
    {
        public List<(int Epoch, bool Training)> Heard { get; } = [];

        public bool AfterEpoch(MLNet.Contrastive.Methods.PretrainingMethod method, int epoch)
        {
            Heard.Add((epoch, method.training));
            method.eval();
            return epoch >= stopAfter;
        }
    }

    /// <summary>
    /// Epoch callbacks hear every full epoch in order, in training mode, and stop the run after the epoch where one says so;
    /// the run then checkpoints that epoch and returns. A callback that leaves the method in eval mode does not change the next epoch's mode.
    /// </summary>
    [Test]
    public void EpochCallbacksHearEveryEpochAndStopTheRun()
    {
        var data = TestData.SampleTrain(256);
        using var folder = TestData.NewFolder();
        var (never, stopper) = (new Recorder(int.MaxValue), new Recorder(2));
        var options = Options(epochs: 5, folder["c.bin"]);
        options.EpochCallbacks = [never, stopper];
        var result = new Pretrainer(options).Fit(data);

        Assert.That(result.Epochs, Is.EqualTo(2));
        Assert.That(result.Steps, Is.EqualTo(4));
        Assert.That(never.Heard, Is.EqualTo(new[] { (1, true), (2, true) }), "every callback hears every epoch, in training mode");
        Assert.That(stopper.Heard, Is.EqualTo(never.Heard));
        Assert.That(Checkpoint.ReadInfo(folder["c.bin"]).Epoch, Is.EqualTo(2));
        options.EpochCallbacks = [null!];
        Assert.That(() => new Pretrainer(options), Throws.InstanceOf<ArgumentNullException>().With.Message.Contains("EpochCallbacks"));
    }

    /// <summary>
    /// <see cref="EarlyStopping"/> on a run of the supervised method: it scores the validation images after every epoch,
    /// stops after <c>patience</c> epochs without a better accuracy, and puts the best epoch's weights back (its accuracy
    /// is the network's again).
    /// </summary>
    [Test]
    public void EarlyStoppingKeepsTheBestEpochOfASupervisedRun()
    {
        var all = TestData.SampleTrain(768);
        var (train, validation) = (all.Subset(Enumerable.Range(0, 512).ToArray()), all.Subset(Enumerable.Range(512, 256).ToArray()));
        using var stopping = new EarlyStopping(validation, patience: 2);
        var options = Options(epochs: 12);
        options.Method = new MLNet.Contrastive.Methods.SupervisedOptions { Classes = 10 };
        options.Run.LearningRate = 3e-2;  // large enough that validation accuracy stops improving within a few epochs
        options.EpochCallbacks = [stopping];
        var result = new Pretrainer(options).Fit(train);

        Assert.That(stopping.Accuracies.Select(a => a.Epoch), Is.EqualTo(Enumerable.Range(1, result.Epochs)));
        var best = stopping.Accuracies.MaxBy(a => a.Accuracy);
        Assert.That(stopping.BestEpoch, Is.EqualTo(best.Epoch));
        Assert.That(result.Epochs == 12 || result.Epochs == best.Epoch + 2, $"stopped after epoch {result.Epochs}, best {best.Epoch}");
        var network = (MLNet.Contrastive.Methods.Supervised)result.Method;
        Assert.That(stopping.RestoreBest(network), Is.True);
        var predicted = MLNet.Contrastive.Metrics.Embeddings.FromModule(network, x => network.Logits(x).argmax(1, keepdim: true).to(TorchSharp.torch.ScalarType.Float32), 1, validation).Values;
        Assert.That((double)predicted.Where((p, i) => (int)p == validation.Labels![i]).Count() / validation.Count, Is.EqualTo(best.Accuracy).Within(1e-9));
        Assert.That(() => new EarlyStopping(validation, 0), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("patience"));
        Assert.That(() => new EarlyStopping(validation.WithLabels([.. Enumerable.Repeat(-1, validation.Count)], null), 1),
            Throws.ArgumentException.With.Message.Contains("needs a label"));
        // No image: every epoch's accuracy would be NaN and no epoch the best.
        Assert.That(() => new EarlyStopping(validation.Subset([]), 1), Throws.ArgumentException.With.Message.Contains("validation set has no images"));
    }

    [Test]
    public void ResumeContinuesAtTheNextStepAndMatchesAnUninterruptedRun()
    {
        var data = TestData.SampleTrain(256);
        using var folder = TestData.NewFolder();
        var uninterrupted = new Pretrainer(Options(epochs: 3)).Fit(data);

        // Interrupt the same 3-epoch run after step 4 (the end of epoch 2); it writes its checkpoint, then stops.
        var checkpoint = folder["run/checkpoint.bin"];
        using var stop = new CancellationTokenSource();
        Assert.That(() => new Pretrainer(Options(epochs: 3, checkpoint)).Fit(data, new SynchronousProgress(p => { if (p.Step == 4) stop.Cancel(); }), stop.Token),
            Throws.InstanceOf<OperationCanceledException>());
        Assert.That(Checkpoint.ReadInfo(checkpoint).GlobalStep, Is.EqualTo(4));
        Assert.That(Directory.GetFiles(folder["run"]), Is.EqualTo(new[] { checkpoint }), "no temporary file is left behind");

        var resumed = new Pretrainer(Options(epochs: 3, checkpoint, resume: true)).Fit(data);
        Assert.That(resumed.History.Steps.Select(s => s.Step), Is.EqualTo(Enumerable.Range(1, 6)));
        Assert.That(resumed.Info.Epoch, Is.EqualTo(3));
        // Same data order, augmentation draws and optimizer state: the resumed epoch repeats the uninterrupted one.
        var expected = uninterrupted.History.Steps.Skip(4).Select(s => s.Loss);
        Assert.That(resumed.History.Steps.Skip(4).Select(s => s.Loss), Is.EqualTo(expected).Within(1e-4));
    }

    [Test]
    public void CancellingTheMLNetHostStopsAfterTheCurrentStepWithACheckpoint()
    {
        var data = TestData.SampleTrain(256);
        using var folder = TestData.NewFolder();
        var mlContext = new Microsoft.ML.MLContext(0);
        // What Microsoft.ML.Experimental's extension and AutoML call; the method is internal to ML.NET.
        var cancel = typeof(Microsoft.ML.MLContext).GetMethod("CancelExecution", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        var checkpoint = folder["c.bin"];
        Assert.That(() => new Pretrainer(Options(epochs: 3, checkpoint), mlContext)
                .Fit(data, new SynchronousProgress(p => { if (p.Step == 3) cancel.Invoke(mlContext, null); })),
            Throws.InstanceOf<OperationCanceledException>().With.Message.Contains("after step 3").And.Message.Contains(checkpoint));
        Assert.That(Checkpoint.ReadInfo(checkpoint).GlobalStep, Is.EqualTo(3), "the step under way finishes and is checkpointed");
    }

    [Test]
    public void CheckpointGivesBackTheEncoder()
    {
        var data = TestData.SampleTrain(256);
        using var folder = TestData.NewFolder();
        var result = new Pretrainer(Options(epochs: 1, folder["c.bin"])).Fit(data);
        var loaded = Checkpoint.LoadEncoder(folder["c.bin"]);
        using var batch = data.Batch([0, 1, 2, 3]);
        using var expected = result.Encoder.forward(batch);
        using var actual = loaded.forward(batch);
        Assert.That((expected - actual).abs().max().item<float>(), Is.LessThan(1e-6f));
    }

    [Test]
    public void CorruptOrForeignCheckpointIsNamed()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllText(folder["junk.bin"], "not a checkpoint at all");
        Assert.That(() => Checkpoint.LoadEncoder(folder["junk.bin"]),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("junk.bin"));

        new Pretrainer(Options(epochs: 1, folder["ok.bin"])).Fit(TestData.SampleTrain(128));
        var bytes = File.ReadAllBytes(folder["ok.bin"]);
        File.WriteAllBytes(folder["cut.bin"], bytes[..(bytes.Length / 2)]);
        Assert.That(() => Checkpoint.LoadEncoder(folder["cut.bin"]),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("cut.bin").And.Message.Contains("truncated"));
    }

    [Test]
    public void CheckpointOfAnUnknownMethodIsNamed()
    {
        using var folder = TestData.NewFolder();
        new Pretrainer(Options(epochs: 1, folder["ok.bin"])).Fit(TestData.SampleTrain(128));
        // The method's name is stored in the JSON header; a same-length rename keeps the file's framing intact.
        var bytes = File.ReadAllBytes(folder["ok.bin"]);
        var name = System.Text.Encoding.UTF8.GetBytes("\"method\":\"simclr\"");
        var at = bytes.AsSpan().IndexOf(name);
        Assert.That(at, Is.GreaterThan(0));
        System.Text.Encoding.UTF8.GetBytes("\"method\":\"simcrl\"").CopyTo(bytes, at);
        File.WriteAllBytes(folder["renamed.bin"], Resealed(bytes));
        Assert.That(() => Checkpoint.LoadEncoder(folder["renamed.bin"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith($"{folder["renamed.bin"]}: cannot read the checkpoint").And.Message.Contains("simcrl"));
    }

    [Test]
    public void NonFiniteLossIsRefusedBeforeAnyWeightChanges()
    {
        var data = TestData.SampleTrain(128);
        using var session = new Pretrainer(Options(epochs: 1)).Start(data);
        var poisoned = session.Method.named_parameters().Last();
        using (var noGrad = TorchSharp.torch.no_grad()) poisoned.parameter.fill_(float.NaN);
        var before = session.Method.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

        Assert.That(() => session.Step(Enumerable.Range(0, 128).ToArray(), 0.5, 1),
            Throws.InvalidOperationException.With.Message.StartsWith("The loss became NaN at step 1; the step was not applied."));
        // Weights only: the forward pass has already updated batch norm's running statistics, as any forward in training mode does.
        foreach (var (name, weights) in session.Method.named_parameters().Where(p => p.name != poisoned.name))
            Assert.That(TestData.Same(weights, before[name]), Is.True, name);
    }

    [Test]
    public void ResumingAtAnotherBatchSizeIsRefused()
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(256);
        new Pretrainer(Options(epochs: 1, folder["run.bin"])).Fit(data);
        var other = Options(epochs: 2, folder["run.bin"], resume: true);
        other.Run.BatchSize = 64;
        Assert.That(() => new Pretrainer(other).Fit(data), Throws.ArgumentException.With.Message.EqualTo(
            $"{folder["run.bin"]}: the checkpoint was trained at batch size 128; resume with that batch size, not 64."));
    }

    /// <summary>
    /// The checkpoint with its digest recomputed, as a file whose edit went unnoticed would be: what the checks behind
    /// the digest see.
    /// </summary>
    private static byte[] Resealed(byte[] bytes)
    {
        System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 8 - 32)).CopyTo(bytes, bytes.Length - 8 - 32);
        return bytes;
    }

    [Test]
    public void AnyChangedByteIsFoundByTheDigest()
    {
        using var folder = TestData.NewFolder();
        new Pretrainer(Options(epochs: 1, folder["ok.bin"])).Fit(TestData.SampleTrain(128));
        var bytes = File.ReadAllBytes(folder["ok.bin"]);
        // A bit in the header, one in the middle (weights or optimizer state), one in the digest itself.
        foreach (var at in new[] { 40, bytes.Length / 2, bytes.Length - 8 - 16 })
        {
            var damaged = (byte[])bytes.Clone();
            damaged[at] ^= 0x10;
            File.WriteAllBytes(folder["flipped.bin"], damaged);
            Assert.That(() => Checkpoint.LoadEncoder(folder["flipped.bin"]), Throws.TypeOf<InvalidDataException>().With.Message.EqualTo(
                $"{folder["flipped.bin"]}: cannot read the checkpoint: the file is damaged (its contents do not match the SHA-256 written with them)."), $"byte {at}");
        }
    }

    [TestCase(16)]
    [TestCase(int.MaxValue)]
    public void DamagedGeneratorStateIsNamedNotAborted(int length)
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(128);
        new Pretrainer(Options(epochs: 1, folder["run.bin"])).Fit(data);
        // The file ends with the state's length, the state, the 32-byte digest and the 8-byte end marker.
        using var generator = new TorchSharp.torch.Generator(0);
        var stateLength = (int)generator.get_state().shape[0];
        var bytes = File.ReadAllBytes(folder["run.bin"]);
        BitConverter.GetBytes(length).CopyTo(bytes, bytes.Length - 8 - 32 - stateLength - 4);
        File.WriteAllBytes(folder["run.bin"], Resealed(bytes));
        Assert.That(() => new Pretrainer(Options(epochs: 2, folder["run.bin"], resume: true)).Fit(data),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith($"{folder["run.bin"]}: cannot read the checkpoint: the augmentation generator's state is {length} bytes"));
    }

    [Test]
    public void DivergedWeightsAreNeverCheckpointedNorExported()
    {
        // The issue's repro: 1,000 images at batch 500 and learning rate 1e30. Step 2's loss and gradients are finite
        // and its update leaves finite weights near 1e29, which no longer embed an image finitely (and overflow float32
        // once batch norms are folded into an export): the end-of-epoch check refuses to checkpoint them.
        using var folder = TestData.NewFolder();
        var options = Options(epochs: 3, folder["run.bin"]);
        (options.Run.BatchSize, options.Run.LearningRate) = (500, 1e30);
        Assert.That(() => new Pretrainer(options).Fit(TestData.SampleTrain(1000)),
            Throws.InvalidOperationException.With.Message.StartsWith("The weights at the end of epoch 1 give NaN or infinite embeddings"));
        Assert.That(File.Exists(folder["run.bin"]), Is.False, "epoch 1's weights are not saved");

        var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        using (var noGrad = TorchSharp.torch.no_grad()) encoder.parameters().First().fill_(float.PositiveInfinity);
        Assert.That(() => MLNet.Contrastive.Onnx.EncoderOnnxExporter.Export(encoder, folder["e.onnx"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith("The encoder's weights contain NaN or infinite values"));
        Assert.That(File.Exists(folder["e.onnx"]), Is.False);
    }

    [Test]
    public void FiniteWeightsThatOverflowWhenFoldedAreNotExported()
    {
        using var folder = TestData.NewFolder();
        var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        using (var noGrad = TorchSharp.torch.no_grad())
            foreach (var parameter in encoder.parameters()) parameter.fill_(1e30f);
        Assert.That(FiniteWeights.FirstNonFinite(encoder), Is.Null, "every weight is finite");
        Assert.That(() => MLNet.Contrastive.Onnx.EncoderOnnxExporter.Export(encoder, folder["e.onnx"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith("The encoder's exported weights would hold NaN or infinite values"));
        Assert.That(File.Exists(folder["e.onnx"]), Is.False);
    }

    [Test]
    public void NonFiniteBuffersAreFoundByName()
    {
        var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        var (name, buffer) = encoder.named_buffers().First(b => b.name.EndsWith("running_var"));
        using (var noGrad = TorchSharp.torch.no_grad()) buffer[0] = float.NaN;
        Assert.That(FiniteWeights.FirstNonFinite(encoder), Is.EqualTo(name));
    }

    [Test]
    public void ACheckpointWithNonFiniteWeightsIsRefusedByName()
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(256);
        var options = Options(epochs: 1, folder["run.bin"]);
        new Pretrainer(options).Fit(data);
        // Write the same run back with one weight infinite, through the checkpoint writer (digest and all).
        using (var session = new Pretrainer(Options(epochs: 2, folder["run.bin"], resume: true)).Start(data))
        {
            using (var noGrad = TorchSharp.torch.no_grad()) session.Method.Encoder.parameters().First().fill_(float.PositiveInfinity);
            session.SaveCheckpoint();
        }
        Assert.That(() => Checkpoint.LoadEncoder(folder["run.bin"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith($"{folder["run.bin"]} holds NaN or infinite weights (first: '"));
    }

    [Test]
    public void ZeroEpochsFromAnInitializationKeepsItsWeightsUnchanged()
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(256);
        var initial = new Pretrainer(Options(epochs: 1)).Fit(data).Encoder;
        var options = Options(epochs: 0, folder["run.bin"]);
        (options.Encoder, options.Initialization) = (null, PretrainedEncoder.From(initial));
        var result = new Pretrainer(options).Fit(data);
        Assert.That(result.Steps, Is.Zero);
        var saved = Checkpoint.LoadEncoder(folder["run.bin"]).state_dict();
        foreach (var (name, weights) in initial.state_dict())
            Assert.That(saved[name].eq(weights).all().item<bool>(), Is.True, name);
        Assert.That(() => new Pretrainer(Options(epochs: 0)).Fit(data),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Epochs must be positive (0 only with an Initialization"));
    }

    [Test]
    public void BatchLargerThanTheDatasetIsRejected() =>
        Assert.That(() => new Pretrainer(Options(epochs: 1)).Fit(TestData.SampleTrain(100)),
            Throws.ArgumentException.With.Message.Contains("batch size 128 is larger than the dataset (100 images)"));

    [Test]
    public void TimeBudgetStopsTraining()
    {
        var options = Options(epochs: 1000);
        options.Run.Minutes = 0.05;
        var result = new Pretrainer(options).Fit(TestData.SampleTrain(256));
        Assert.That(result.Info.ElapsedSeconds, Is.InRange(3.0, 30.0));
        Assert.That(result.Info.GlobalStep, Is.GreaterThan(0));
    }

    [TestCase(0.0, 0.0)]
    [TestCase(0.05, 0.5)]
    [TestCase(0.1, 1.0)]
    [TestCase(0.55, 0.5)]
    [TestCase(1.0, 0.0)]
    public void ScheduleWarmsUpLinearlyThenFollowsTheCosine(double progress, double fractionOfPeak) =>
        Assert.That(LearningRateSchedule.At(progress, 2.0, 0.1), Is.EqualTo(2.0 * fractionOfPeak).Within(1e-12));

    private sealed class SynchronousProgress(Action<PretrainProgress> report) : IProgress<PretrainProgress>
    {
        public void Report(PretrainProgress value) => report(value);
    }
}
