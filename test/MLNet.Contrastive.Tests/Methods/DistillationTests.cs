using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Methods;

/// <summary>Distillation from ML.NET's ImageNet ResNet-18 into a small student: the objective, the teacher's input, the run.</summary>
public class DistillationTests
{
    [Test]
    public void LossesMatchHandComputedValues()
    {
        using var student = tensor(new float[] { 1, 0, 0, 1 }, 2, 2);
        using var teacher = tensor(new float[] { 1, 1, 0, 2 }, 2, 2);
        // MSE: ((1−1)² + (0−1)² + (0−0)² + (1−2)²) / 4 = 0.5.
        Assert.That(FeatureDistillationLoss.Compute(student, teacher).item<float>(), Is.EqualTo(0.5f).Within(1e-6));
        // Cosine: 1 − (cos([1,0],[1,1]) + cos([0,1],[0,2])) / 2 = 1 − (1/√2 + 1) / 2.
        Assert.That(FeatureDistillationLoss.Compute(student, teacher, DistillationLossKind.Cosine).item<float>(),
            Is.EqualTo(1 - (1 / Math.Sqrt(2) + 1) / 2).Within(1e-6));
        using var other = zeros(2, 3);
        Assert.That(() => FeatureDistillationLoss.Compute(student, other), Throws.ArgumentException.With.Message.Contains("same shape"));
    }

    private static PretrainOptions Run(DistillationOptions method, int epochs, string? checkpoint = null) => new()
    {
        Method = method, Run = { Epochs = epochs, BatchSize = 64, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 3e-3 }, WarmupFraction = 0.1,
        Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, CheckpointPath = checkpoint,
    };

    [Test]
    public void GreyStudentLearnsTheImageNetTeachersFeatureMapAndTheCheckpointRebuildsWithoutTheTeacher()
    {
        var data = TestData.SampleTrain(256);
        using var folder = TestData.NewFolder();
        var options = new DistillationOptions { Teacher = ImageNetWeights.ResNet18Name, TeacherImageSize = 64 };
        var result = new Pretrainer(Run(options, epochs: 5, folder["run/checkpoint.bin"])).Fit(data);
        var first = result.History.Epochs[0].MeanLoss;
        var last = result.History.Epochs[^1].MeanLoss;
        Assert.That(last, Is.LessThan(0.9 * first), $"mean loss went from {first:F4} to {last:F4}");

        // The checkpoint records the teacher's width and size: loading it needs no teacher.
        var info = Checkpoint.ReadInfo(folder["run/checkpoint.bin"]);
        var resolved = (DistillationOptions)info.Options.Method;
        Assert.That((resolved.TeacherDimension, resolved.TeacherImageSize), Is.EqualTo((512, 64)));
        var (_, method) = Checkpoint.LoadMethod(folder["run/checkpoint.bin"]);
        Assert.That(method.parameters().Sum(p => p.numel()), Is.EqualTo(result.Method.parameters().Sum(p => p.numel())), "the teacher is not part of the method");
        Assert.That(method.state_dict().Keys.Any(k => k.Contains("teacher", StringComparison.OrdinalIgnoreCase)), Is.False);
    }

    [Test]
    public void TheTeacherSeesTheViewResizedAndReplicatedToItsThreeChannels()
    {
        var options = (DistillationOptions)new DistillationOptions { Teacher = ImageNetWeights.ResNet18Name, TeacherImageSize = 64, Target = DistillationTarget.Global };
        var method = (Distillation)options.CreateMethod(new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }),
            new MethodSetup(MLNet.Contrastive.Augmentation.AugmentationOptions.SmallImages(), 0, 0));
        var teacher = ImageNetWeights.ResNet18();
        using var pause = CollectionPause.Begin();
        using var noGrad = no_grad();
        using var grey = rand(3, 1, 28, 28);
        using var features = method.TeacherFeatures(grey);
        using var rgb = nn.functional.interpolate(grey.expand(-1, 3, -1, -1), [64, 64], mode: InterpolationMode.Bilinear, align_corners: false);
        using var expected = teacher.forward(rgb);
        Assert.That(features.shape, Is.EqualTo(new long[] { 3, 512 }));
        Assert.That((features - expected).abs().max().item<float>(), Is.LessThanOrEqualTo(1e-4f));
    }

    [Test]
    public void AnOnnxTeachersFeaturesAreOnnxRuntimesOnTheResizedView()
    {
        // The teacher: a grey 28 px encoder exported by this project (its input is pixels 0–255).
        TorchSharp.torch.manual_seed(5);
        var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        encoder.eval();
        using var folder = TestData.NewFolder();
        EncoderOnnxExporter.Export(encoder, folder["teacher.onnx"]);
        var options = new DistillationOptions { Teacher = folder["teacher.onnx"] };
        var method = (Distillation)options.CreateMethod(new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }),
            new MethodSetup(MLNet.Contrastive.Augmentation.AugmentationOptions.SmallImages(), 0, 0));
        var resolved = (DistillationOptions)method.Options;
        Assert.That((resolved.TeacherImageSize, resolved.TeacherDimension, resolved.Target), Is.EqualTo((28, encoder.EmbeddingDimension, DistillationTarget.Global)),
            "the graph's size and width; an ONNX teacher gives its output only");

        using var pause = CollectionPause.Begin();
        using var noGrad = no_grad();
        using var views = rand(4, 1, 32, 32);
        using var features = method.TeacherFeatures(views);
        using var resized = nn.functional.interpolate(views, [28, 28], mode: InterpolationMode.Bilinear, align_corners: false);
        using var expected = encoder.Embed(resized);
        Assert.That(features.shape, Is.EqualTo(expected.shape));
        Assert.That((features - expected).abs().max().item<float>(), Is.LessThanOrEqualTo(1e-4f));
    }

    [Test]
    public void AMissingOrBrokenTeacherIsNamed()
    {
        var student = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        var setup = new MethodSetup(MLNet.Contrastive.Augmentation.AugmentationOptions.SmallImages(), 0, 0);
        Assert.That(() => new DistillationOptions().Validate(), Throws.ArgumentException.With.Message.Contains("Distillation needs a teacher"));
        Assert.That(() => new DistillationOptions { Teacher = "/no/such/run" }.CreateMethod(student, setup),
            Throws.InstanceOf<FileNotFoundException>().With.Message.Contains("/no/such/run"));
        using var folder = TestData.NewFolder();
        File.WriteAllText(folder["broken.onnx"], "not a model");
        Assert.That(() => new DistillationOptions { Teacher = folder["broken.onnx"] }.CreateMethod(student, setup),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains(folder["broken.onnx"]));
    }

    /// <summary>A grey 28 px encoder exported by this project: a fast ONNX teacher.</summary>
    private static string ExportTeacher(TestData.TempFolder folder, string name, int seed)
    {
        TorchSharp.torch.manual_seed(seed);
        var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        encoder.eval();
        EncoderOnnxExporter.Export(encoder, folder[name]);
        return folder[name];
    }

    [Test]
    public void TheTeacherCacheIsFilledOnceThenReusedByLaterEpochsAndRunsWithTheSameNumbers()
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(128);
        var options = new DistillationOptions { Teacher = ExportTeacher(folder, "teacher.onnx", 5), TeacherCache = folder["cache"], CachedViews = 1 };
        var first = new Pretrainer(Run(options, epochs: 2)).Fit(data);
        Assert.That(((Distillation)first.Method).TeacherViews, Is.EqualTo(128), "the first epoch embeds each image's one view; the second reads them all");
        Assert.That(((DistillationOptions)first.Method.Options).Mixup, Is.False, "cached views are not mixed");

        // A second run of the same settings reads every target from the cache: the same views and targets, so the same losses.
        var second = new Pretrainer(Run(options, epochs: 2)).Fit(data);
        Assert.That(((Distillation)second.Method).TeacherViews, Is.Zero);
        Assert.That(second.History.Steps.Select(s => s.Loss), Is.EqualTo(first.History.Steps.Select(s => s.Loss)).Within(1e-6));
    }

    [Test]
    public void AStaleTeacherCacheIsRefusedByName()
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(64);
        var options = new DistillationOptions { Teacher = ExportTeacher(folder, "teacher.onnx", 5), TeacherCache = folder["cache"], CachedViews = 2 };
        new Pretrainer(Run(options, epochs: 1)).Fit(data);

        // Another teacher file under the same name: its hash differs.
        ExportTeacher(folder, "teacher.onnx", 6);
        Assert.That(() => new Pretrainer(Run(options, epochs: 1)).Fit(data), Throws.InstanceOf<InvalidDataException>()
            .With.Message.StartsWith($"{folder["cache"]}: the teacher cache was written for TeacherSha256 "));
        ExportTeacher(folder, "teacher.onnx", 5);
        var moreViews = (DistillationOptions)options.Clone();
        moreViews.CachedViews = 3;
        Assert.That(() => new Pretrainer(Run(moreViews, epochs: 1)).Fit(data), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("written for Views 2; this run has 3"));

        // The same number of images, but other pixels.
        var other = TestData.SampleTrain(128).Subset(Enumerable.Range(64, 64).ToArray());
        Assert.That(() => new Pretrainer(Run(options, epochs: 1)).Fit(other), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("is not the image the teacher cache was written for"));
        Assert.That(() => new DistillationOptions { Teacher = "x", CachedViews = 0 }.Validate(), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("CachedViews"));
    }

    [Test]
    public void ADamagedTeacherCacheIsRefusedByName()
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(64);
        var options = new DistillationOptions { Teacher = ExportTeacher(folder, "teacher.onnx", 5), TeacherCache = folder["cache"], CachedViews = 1 };
        // The method holds the cache's files mapped until it is disposed.
        new Pretrainer(Run(options, epochs: 1)).Fit(data).Method.Dispose();

        // A cut features file: its length no longer matches the manifest.
        using (var features = File.Open(Path.Combine(folder["cache"], "features.f32"), FileMode.Open)) features.SetLength(features.Length - 4);
        Assert.That(() => new Pretrainer(Run(options, epochs: 1)).Fit(data), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("features.f32: missing or not"));

        // A manifest that is not JSON.
        File.WriteAllText(Path.Combine(folder["cache"], "cache.json"), "{ not json");
        Assert.That(() => new Pretrainer(Run(options, epochs: 1)).Fit(data), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("cache.json: not a teacher cache's manifest"));
    }
}
