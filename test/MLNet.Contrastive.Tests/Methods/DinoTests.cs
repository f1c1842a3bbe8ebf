using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Methods;

public class DinoTests
{
    private static PretrainOptions Run(DinoOptions method, EncoderOptions encoder, int epochs, int batchSize) => new()
    {
        Method = method, Run = { Epochs = epochs, BatchSize = batchSize, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 5e-4 }, WarmupFraction = 0.1,
        Encoder = encoder,
    };

    // The defaults but for the sizes. With DINO's ViT settings (τ_t warmed up to 0.07, τ_base 0.996) and no batch norm
    // in the head, 24 steps here drifted to the uniform collapse (teacher entropy 4.64 of log 128 = 4.85; docs/methods.md).
    private static EncoderOptions Vit() => new()
    {
        Architecture = EncoderArchitecture.VisionTransformer, ImageSize = 28, PatchSize = 4, Depth = 2, HiddenDimension = 32, Heads = 2, MlpDimension = 64,
    };

    private static DinoOptions Small() => new() { Prototypes = 128, HiddenDimension = 128, BottleneckDimension = 64, LocalCrops = 2 };

    /// <summary>
    /// Six epochs on 512 real images with a small ResNet and the default settings lower the loss (4.73 → 4.62 here), and
    /// the teacher has not collapsed (entropy 2.1 → 2.4 of log 128 = 4.85): its output entropy
    /// stays away from 0 (one prototype) and from log K (uniform) — DINO's two collapse modes; the history records
    /// both monitors at every step and the checkpoint carries the centre.
    /// </summary>
    [Test]
    public void ShortRunLowersTheLossWithoutCollapse()
    {
        using var folder = TestData.NewFolder();
        var options = Run(Small(), new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, epochs: 6, batchSize: 128);
        options.CheckpointPath = folder["d.bin"];
        var result = new Pretrainer(options).Fit(TestData.SampleTrain(512));

        var (first, last) = (result.History.Epochs[0].MeanLoss, result.History.Epochs[^1].MeanLoss);
        Assert.That(last, Is.LessThan(first - 0.01 * Math.Abs(first)), $"mean loss went from {first:F4} to {last:F4}");
        Assert.That(result.History.Steps.All(s => s.Monitors is { } m && m.ContainsKey("TeacherEntropy") && m.ContainsKey("KlDivergence")), Is.True);
        var entropy = result.History.Steps[^1].Monitors!["TeacherEntropy"];
        Assert.That(entropy, Is.InRange(0.05, 0.95 * Math.Log(128)), "teacher entropy");
        Assert.That(result.History.Steps[^1].Monitors!["KlDivergence"], Is.GreaterThan(0));

        var (_, method) = Checkpoint.LoadMethod(folder["d.bin"]);
        var state = method.state_dict();
        Assert.That(state["center"].shape, Is.EqualTo(new long[] { 1, 128 }));
        Assert.That(state["center"].abs().sum().item<float>(), Is.GreaterThan(0));
        Assert.That(TrainingHistory.FromJson(result.History.ToJson()).Steps[^1].Monitors!["TeacherEntropy"], Is.EqualTo(entropy));
    }

    /// <summary>
    /// The head normalises its hidden layers by batch with a CNN (whose pooled features share a large common part) and
    /// not with a ViT, unless told; teacher and student alike.
    /// </summary>
    [Test]
    public void HeadBatchNormFollowsTheEncoderUnlessSet()
    {
        var setup = new MethodSetup(new MLNet.Contrastive.Augmentation.AugmentationOptions(), 0, 0);
        static int Norms(Dino dino) => dino.named_modules().Count(m => m.module is TorchSharp.Modules.BatchNorm && m.name.Contains("head", StringComparison.OrdinalIgnoreCase));
        using var cnn = new Dino(ImageEncoder.Create(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }), Small(), setup);
        using var vit = new Dino(ImageEncoder.Create(Vit()), Small(), setup);
        using var plain = new Dino(ImageEncoder.Create(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }), new DinoOptions { Prototypes = 16, HeadBatchNorm = false }, setup);
        Assert.That((Norms(cnn), Norms(vit), Norms(plain)), Is.EqualTo((4, 0, 0)), "batch norms in the two heads: CNN, ViT, CNN with HeadBatchNorm = false");
    }

    /// <summary>
    /// A checkpoint's settings written before <see cref="DinoOptions.HeadBatchNorm"/> existed (no such field) read back as
    /// false, the head those checkpoints hold; written settings keep their value, null (follow the encoder) included.
    /// </summary>
    [Test]
    public void SettingsWrittenBeforeTheHeadsBatchNormLoadWithoutIt()
    {
        var json = System.Text.Json.JsonSerializer.Serialize<MethodOptions>(new DinoOptions(), PretrainingMethods.Json);
        Assert.That(json, Does.Contain("\"HeadBatchNorm\":null"));
        var old = json.Replace("\"HeadBatchNorm\":null,", "");
        Assert.That(((DinoOptions)System.Text.Json.JsonSerializer.Deserialize<MethodOptions>(old, PretrainingMethods.Json)!).HeadBatchNorm, Is.False);
        Assert.That(((DinoOptions)System.Text.Json.JsonSerializer.Deserialize<MethodOptions>(json, PretrainingMethods.Json)!).HeadBatchNorm, Is.Null);
        Assert.That(((DinoOptions)new DinoOptions { HeadBatchNorm = true }.Clone()).HeadBatchNorm, Is.True);
    }

    /// <summary>A tiny ViT trains with DINO: small crops of 16 px are a whole number of its 4 px patches, and the loss stays finite.</summary>
    [Test]
    public void TrainsATinyVisionTransformer()
    {
        var result = new Pretrainer(Run(Small(), Vit(), epochs: 1, batchSize: 32)).Fit(TestData.SampleTrain(64));
        Assert.That(result.History.Steps, Has.Count.EqualTo(2));
        Assert.That(result.History.Steps.All(s => double.IsFinite(s.Loss)), Is.True);
        Assert.That(((Dino)result.Method).ViewsPerImage, Is.EqualTo(4));
    }

    /// <summary>DINO's ViT-S/16 schedule (0.04 → 0.07 over the first 30 %); the default keeps τ_t at 0.04 throughout.</summary>
    [Test]
    public void TeacherTemperatureWarmsUpLinearlyThenStays()
    {
        Assert.That(new DinoOptions().TeacherTemperatureAt(0.15), Is.EqualTo(0.04).Within(1e-12));
        var options = new DinoOptions { TeacherTemperature = 0.07 };
        Assert.That(options.TeacherTemperatureAt(0), Is.EqualTo(0.04).Within(1e-12));
        Assert.That(options.TeacherTemperatureAt(0.15), Is.EqualTo(0.055).Within(1e-12));
        Assert.That(options.TeacherTemperatureAt(0.3), Is.EqualTo(0.07).Within(1e-12));
        Assert.That(options.TeacherTemperatureAt(0.9), Is.EqualTo(0.07).Within(1e-12));
    }

    [Test]
    public void EachGradientIsClippedToItsOwnNormAsDinosClipGradients()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        // Gradients [3, 4, 0] (norm 5), 0.05 × 4 (norm 0.1) and none.
        var large = new TorchSharp.Modules.Parameter(TorchSharp.torch.zeros(3));
        var small = new TorchSharp.Modules.Parameter(TorchSharp.torch.zeros(2, 2));
        var untouched = new TorchSharp.Modules.Parameter(TorchSharp.torch.zeros(1));
        ((large * TorchSharp.torch.tensor(new float[] { 3, 4, 0 })).sum() + small.sum() * 0.05f).backward();
        Dino.ClipEachGradient([large, small, untouched], clip: 3);
        // 3 / (5 + 1e-6) of each value: 1.8, 2.4, 0; the small gradient as it was.
        Assert.That(large.grad!.data<float>().ToArray(), Is.EqualTo(new[] { 1.8f, 2.4f, 0f }).Within(1e-5f));
        Assert.That(small.grad!.data<float>().ToArray(), Is.EqualTo(new[] { 0.05f, 0.05f, 0.05f, 0.05f }).Within(1e-7f));
        Assert.That(untouched.grad, Is.Null);
        Assert.That(() => new DinoOptions { GradientClip = 0 }.Validate(), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
