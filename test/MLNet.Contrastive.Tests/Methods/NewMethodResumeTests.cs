using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Methods;

/// <summary>DINO (its teacher and centre), MAE (its decoder), iBOT (its mask token and patch centre) and I-JEPA (its predictor and target encoder) resume from their checkpoints to the uninterrupted run's losses.</summary>
public class NewMethodResumeTests
{
    private static IEnumerable<TestCaseData> Methods()
    {
        yield return new TestCaseData(new DinoOptions { Prototypes = 64, HiddenDimension = 64, BottleneckDimension = 32, LocalCrops = 2 },
            new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }).SetArgDisplayNames("dino");
        yield return new TestCaseData(new MaeOptions { DecoderDimension = 32, DecoderDepth = 1, DecoderHeads = 2 },
            new EncoderOptions { Architecture = EncoderArchitecture.VisionTransformer, ImageSize = 28, PatchSize = 4, Depth = 1, HiddenDimension = 32, Heads = 2, MlpDimension = 64 })
            .SetArgDisplayNames("mae");
        yield return new TestCaseData(new IbotOptions { Prototypes = 64, HiddenDimension = 64, BottleneckDimension = 32, LocalCrops = 2 },
            new EncoderOptions { Architecture = EncoderArchitecture.VisionTransformer, ImageSize = 28, PatchSize = 4, Depth = 1, HiddenDimension = 32, Heads = 2, MlpDimension = 64 })
            .SetArgDisplayNames("ibot");
        yield return new TestCaseData(new IjepaOptions { PredictorDimension = 32, PredictorDepth = 1, PredictorHeads = 2 },
            new EncoderOptions { Architecture = EncoderArchitecture.VisionTransformer, ImageSize = 28, PatchSize = 4, Depth = 1, HiddenDimension = 32, Heads = 2, MlpDimension = 64 })
            .SetArgDisplayNames("ijepa");
    }

    [TestCaseSource(nameof(Methods))]
    public void ResumedRunRepeatsTheUninterruptedLosses(MethodOptions method, EncoderOptions encoder)
    {
        var data = TestData.SampleTrain(256);
        using var folder = TestData.NewFolder();
        PretrainOptions Options(string? checkpoint = null, bool resume = false) => new()
        {
            Method = method, Run = { Epochs = 2, BatchSize = 64, Seed = 5, Threads = 2, Device = "cpu", LearningRate = 5e-4 },
            Encoder = encoder, CheckpointPath = checkpoint, Resume = resume,
        };
        var uninterrupted = new Pretrainer(Options()).Fit(data);

        var checkpoint = folder["run.bin"];
        using var stop = new CancellationTokenSource();
        Assert.That(() => new Pretrainer(Options(checkpoint)).Fit(data, new Progress(p => { if (p.Step == 5) stop.Cancel(); }), stop.Token),
            Throws.InstanceOf<OperationCanceledException>());
        var resumed = new Pretrainer(Options(checkpoint, resume: true)).Fit(data);
        Assert.That(resumed.History.Steps.Skip(5).Select(s => s.Loss), Is.EqualTo(uninterrupted.History.Steps.Skip(5).Select(s => s.Loss)).Within(1e-4));
    }

    private sealed class Progress(Action<PretrainProgress> report) : IProgress<PretrainProgress>
    {
        public void Report(PretrainProgress value) => report(value);
    }
}
