using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Models;

/// <summary>Parity with Debian's python3-torchvision 0.14: its ResNets' state dicts load and give its outputs.</summary>
public class TorchvisionWeightsTests
{
    private TestData.TempFolder folder = null!;

    [OneTimeSetUp]
    public void WriteReference()
    {
        TorchRuntime.Initialize();
        folder = TestData.NewFolder();
        var script = Path.Combine(TestData.RepositoryRoot, "test", "MLNet.Contrastive.Tests", "Models", "torchvision_reference.py");
        using var process = Process.Start(new ProcessStartInfo("/usr/bin/python3", [script, folder.Path]) { RedirectStandardOutput = true, RedirectStandardError = true })
            ?? throw new InvalidOperationException("cannot start /usr/bin/python3");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, errors.Contains("No module named 'torch")
            ? "Debian's python3-torchvision is missing: apt-get install python3-torchvision, or run build/test, which does.\n" + errors
            : output.Result + errors);
    }

    [OneTimeTearDown]
    public void Delete() => folder.Dispose();

    [TestCase("resnet18", 64, TestName = "Resnet18WithItsClassifier")]
    [TestCase("resnet34", 32, TestName = "Resnet34UnderABackbonePrefix")]
    [TestCase("resnet50", 64, TestName = "Resnet50BottlenecksUnderAnEncoderPrefix")]
    public void StateDictLoadsAndGivesTorchvisionsOutput(string name, int size)
    {
        var encoder = TorchvisionWeights.Load(folder[$"{name}.pt"]);
        var preset = EncoderOptions.For(3, 224, Enum.Parse<EncoderPreset>(name, ignoreCase: true));
        Assert.That(encoder.Options.Bottleneck, Is.EqualTo(name == "resnet50"));
        Assert.That(encoder.Options.StageWidths, Is.EqualTo(preset.StageWidths));
        Assert.That(Enumerable.Range(0, 4).Select(encoder.Options.BlocksIn), Is.EqualTo(Enumerable.Range(0, 4).Select(preset.BlocksIn)));
        Assert.That(encoder.state_dict().Values.Where(t => t.dtype == ScalarType.Float32).Sum(t => t.numel()),
            Is.EqualTo(new ResNetEncoder(preset).state_dict().Values.Where(t => t.dtype == ScalarType.Float32).Sum(t => t.numel())), "the preset is the same network");
        var input = Floats(folder[$"{name}-input.bin"]);
        var expected = Floats(folder[$"{name}-output.bin"]);
        float[] actual;
        using (var pause = CollectionPause.Begin())
        using (var noGrad = no_grad())
        using (var images = tensor(input, new long[] { 2, 3, size, size }))
        using (var output = encoder.forward(images)) actual = output.data<float>().ToArray();
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        var difference = actual.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"{name}: largest feature {expected.Max(Math.Abs)}, largest difference {difference}");
        // 1e-4 for features up to 10; ResNet-50's random batch-norm statistics grow its features to ~100, and float32
        // sums over 16 blocks then differ in the sixth significant digit: the bound scales with the largest feature.
        var tolerance = 1e-4f * Math.Max(1f, expected.Max(Math.Abs) / 10f);
        Assert.That(difference, Is.LessThanOrEqualTo(tolerance));

        // The torchvision layout exports like any encoder.
        var onnx = folder[$"{name}.onnx"];
        EncoderOnnxExporter.Export(encoder, onnx, new EncoderOnnxOptions { Height = size, Width = size });
        using var embedder = new ImageEmbedder(onnx);
        Assert.That(embedder.ExecutionProvider, Is.EqualTo("CPU"));
        Assert.That(embedder.Dimension, Is.EqualTo(encoder.EmbeddingDimension));
        using var session = new InferenceSession(onnx);
        var pixels = new DenseTensor<float>(input.Select(v => v * 255f).ToArray(), [2, 3, size, size]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), pixels)]);
        var exported = results.Single().AsEnumerable<float>().ToArray();
        var onnxDifference = exported.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"{name}: ONNX Runtime's largest difference from torchvision {onnxDifference}");
        Assert.That(onnxDifference, Is.LessThanOrEqualTo(tolerance));
    }

    [TestCase("vit.pt", TestName = "VitInTorchvisionsNames")]
    [TestCase("vit-timm.pt", TestName = "VitInTimmsNamesUnderAPrefix")]
    public void VitStateDictLoadsAndGivesTorchvisionsOutput(string file)
    {
        var encoder = (VisionTransformer)TorchvisionWeights.Load(folder[file]);
        Assert.That((encoder.Options.PatchSize, encoder.Options.ImageSize, encoder.Options.Depth, encoder.Options.HiddenDimension, encoder.Options.Heads, encoder.Options.MlpDimension),
            Is.EqualTo((4, 32, 2, 128, 2, 256)));
        var input = Floats(folder["vit-input.bin"]);
        var expected = Floats(folder["vit-output.bin"]);
        float[] actual;
        using (var pause = CollectionPause.Begin())
        using (var noGrad = no_grad())
        using (var images = tensor(input, new long[] { 2, 3, 32, 32 }))
        using (var output = encoder.forward(images)) actual = output.data<float>().ToArray();
        var difference = actual.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"{file}: largest feature {expected.Max(Math.Abs)}, largest difference {difference}");
        Assert.That(difference, Is.LessThanOrEqualTo(1e-4f));

        var onnx = folder[$"{file}.onnx"];
        EncoderOnnxExporter.Export(encoder, onnx, new EncoderOnnxOptions { Height = 32, Width = 32 });
        using var session = new InferenceSession(onnx);
        var pixels = new DenseTensor<float>(input.Select(v => v * 255f).ToArray(), [2, 3, 32, 32]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), pixels)]);
        var exported = results.Single().AsEnumerable<float>().ToArray();
        var onnxDifference = exported.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"{file}: ONNX Runtime's largest difference from torchvision {onnxDifference}");
        Assert.That(onnxDifference, Is.LessThanOrEqualTo(1e-4f));
    }

    [Test]
    public void VitPositionsResampleToOtherImageSizes()
    {
        var encoder = (VisionTransformer)TorchvisionWeights.Load(folder["vit.pt"]);
        using var noGrad = no_grad();
        // The same grid is the weights' own embeddings; a 12 × 12 grid (48 px) keeps the class token's and interpolates the rest.
        Assert.That(TestData.Same(encoder.Positions(8, 8), encoder.PositionEmbedding), Is.True);
        using var resampled = encoder.Positions(12, 12);
        Assert.That(resampled.shape, Is.EqualTo(new long[] { 1, 145, 128 }));
        Assert.That(TestData.Same(resampled.narrow(1, 0, 1), encoder.PositionEmbedding.narrow(1, 0, 1)), Is.True);
        using var images = rand(2, 3, 48, 48);
        using var output = encoder.forward(images);
        Assert.That(output.shape, Is.EqualTo(new long[] { 2, 128 }));
        Assert.That(() => encoder.forward(rand(1, 3, 30, 30)), Throws.ArgumentException.With.Message.Contains("multiples of 4"));
    }

    [Test]
    public void ANormalisationOtherThanImageNetsTravelsWithTheWeights()
    {
        var init = PretrainedEncoder.Load(folder["vit.pt"], ([0.5f, 0.5f, 0.5f], [0.25f, 0.25f, 0.25f]));
        Assert.That((init.EncoderOptions.Mean, init.EncoderOptions.Std), Is.EqualTo((new[] { 0.5f, 0.5f, 0.5f }, new[] { 0.25f, 0.25f, 0.25f })));
        Assert.That(init.Encoder.NormalizationStd.data<float>().ToArray(), Is.EqualTo(new[] { 0.25f, 0.25f, 0.25f }));
        Assert.That(init.EncoderOptions.Describe(), Does.StartWith("ViT: patch 4 (position embeddings for 32 px), 2 blocks of width 128, 2 heads, MLP 256; 128-d embedding; RGB normalised by mean 0.5/0.5/0.5, std 0.25/0.25/0.25"));
        Assert.That(PretrainedEncoder.Load(folder["resnet50.pt"]).EncoderOptions.Describe(), Is.EqualTo(
            "ResNet: stem 64 (ImageNet 7×7 stem), stages 256-512-1024-2048 of 3-4-6-3 bottleneck blocks; 2048-d embedding; RGB normalised by mean 0.485/0.456/0.406, std 0.229/0.224/0.225"));
        Assert.That(() => PretrainedEncoder.Load(folder["vit.pt"], ([0.5f], [0.5f])),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("Mean and Std need one value per input channel (3)"));
        Assert.That(() => PretrainedEncoder.Load(ImageNetWeights.ResNet18Name, ([0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f])),
            Throws.ArgumentException.With.Message.Contains("a normalisation is given only with a PyTorch state dict"));
    }

    [Test]
    public void SafetensorsHoldTheSameWeights()
    {
        var fromPickle = TorchvisionWeights.Load(folder["resnet18.pt"]).state_dict();
        var fromSafetensors = TorchvisionWeights.Load(folder["resnet18.safetensors"]).state_dict();
        Assert.That(fromSafetensors.Keys, Is.EquivalentTo(fromPickle.Keys));
        foreach (var (name, weights) in fromPickle)
            Assert.That(fromSafetensors[name].eq(weights).all().item<bool>(), Is.True, name);
    }

    [Test]
    public void AnInitializationByFileName()
    {
        var init = PretrainedEncoder.Load(folder["resnet18.pt"]);
        Assert.That(init.Source, Is.EqualTo($"{folder["resnet18.pt"]} (PyTorch state dict)"));
        Assert.That(init.EncoderOptions.Mean, Is.EqualTo(EncoderOptions.ImageNetMean));
        Assert.That(init.EncoderOptions.SmallImageStem, Is.False);
    }

    [Test]
    public void MissingUnexpectedAndMisshapenKeysAreNamed()
    {
        Assert.That(() => TorchvisionWeights.Load(folder["broken.pt"]), Throws.TypeOf<InvalidDataException>().With.Message.EqualTo(
            $"{folder["broken.pt"]}: not a torchvision-layout ResNet: missing keys [layer1.0.bn1.weight], unexpected keys [extra.weight]."));
        Assert.That(() => TorchvisionWeights.Load(folder["misshapen.pt"]), Throws.TypeOf<InvalidDataException>().With.Message.EqualTo(
            $"{folder["misshapen.pt"]}: 'layer2.1.conv2.weight' is [128, 128, 1, 1]; this encoder's 'blocks.3.conv2.weight' takes [128, 128, 3, 3]."));
        File.WriteAllText(folder["not-a-state-dict.pt"], "plain text");
        Assert.That(() => TorchvisionWeights.Load(folder["not-a-state-dict.pt"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith($"{folder["not-a-state-dict.pt"]}: not a readable PyTorch state dict ("));
    }

    private static float[] Floats(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var values = new float[bytes.Length / sizeof(float)];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }
}
