using System.Diagnostics;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Onnx;

public class EncoderOnnxExporterTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    /// <summary>An encoder whose batch norms hold real running statistics (a few train-mode passes over real images).</summary>
    private static ResNetEncoder WarmedEncoder(EncoderOptions options)
    {
        manual_seed(1);
        var encoder = new ResNetEncoder(options);
        var data = TestData.SampleTrain(512);
        using (no_grad())
            for (var start = 0; start < 512; start += 128)
            {
                using var batch = data.Batch(Enumerable.Range(start, 128).ToArray());
                encoder.forward(batch).Dispose();
            }
        encoder.eval();
        return encoder;
    }

    private static IEnumerable<TestCaseData> Encoders()
    {
        yield return new TestCaseData(EncoderOptions.For(1, 28)).SetName("SmallImageStem");
        yield return new TestCaseData(new EncoderOptions { SmallImageStem = false, StemWidth = 16, StageWidths = [32, 48], BlocksPerStage = 2 }).SetName("ImageNetStemTwoBlocksPerStage");
        yield return new TestCaseData(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32, 48], EmbeddingStages = 2, EmbeddingGrid = 3 }).SetName("SevenAndFourPixelStagesOnAThreeByThreeGrid");
        yield return new TestCaseData(new EncoderOptions { EmbeddingStages = 1, EmbeddingGrid = 1 }).SetName("LastStageGlobalAverage");
        yield return new TestCaseData(new EncoderOptions { FirstStageStride = 1, StemWidth = 16, StageWidths = [16, 32, 48], EmbeddingStages = 2, EmbeddingGrid = 2 }).SetName("FirstStageAtTheStemsResolution");
    }

    [TestCaseSource(nameof(Encoders))]
    public void OnnxRuntimeMatchesTorchSharpOnRealImages(EncoderOptions options)
    {
        var encoder = WarmedEncoder(options);
        var data = TestData.SampleTrain(300);
        using var folder = TestData.NewFolder();
        EncoderOnnxExporter.Export(encoder, folder["encoder.onnx"]);

        using var embedder = new ImageEmbedder(folder["encoder.onnx"], new ImageEmbedderOptions { BatchSize = 64 });
        var onnx = embedder.Embed(data);
        var torch = Embeddings.FromEncoder(encoder, data);
        var largest = onnx.Values.Zip(torch.Values, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(largest, Is.LessThanOrEqualTo(1e-4f), $"max |ONNX − TorchSharp| = {largest:G3}");
        Assert.That(torch.Values.Max(Math.Abs), Is.GreaterThan(0.1f), "the comparison is on non-trivial values");
    }

    [Test]
    public void GraphHasSymbolicBatchDeclaredSizesAndColumnNames()
    {
        var model = EncoderOnnxExporter.ToModel(new ResNetEncoder(EncoderOptions.For(3, 32)),
            new EncoderOnnxOptions { Height = 32, Width = 32, InputName = "Pixels", OutputName = "Features" });
        var input = model.Graph.Input.Single();
        var output = model.Graph.Output.Single();
        Assert.That(input.Name, Is.EqualTo("Pixels"));
        Assert.That(output.Name, Is.EqualTo("Features"));
        Assert.That(input.Type.TensorType.Shape.Dim.Select(d => d.HasDimParam ? d.DimParam : d.DimValue.ToString()), Is.EqualTo(new[] { "N", "3", "32", "32" }));
        Assert.That(output.Type.TensorType.Shape.Dim.Select(d => d.HasDimParam ? d.DimParam : d.DimValue.ToString()), Is.EqualTo(new[] { "N", "768" }));
        Assert.That(model.OpsetImport.Single().Version, Is.EqualTo(17));
        Assert.That(model.Graph.Node.Select(n => n.OpType).Distinct(),
            Is.SubsetOf(new[] { "Mul", "Add", "Conv", "Relu", "AveragePool", "Flatten", "Concat" }), "batch norms are folded into the convolutions");
    }

    [Test]
    public void GridsThatNoAveragePoolComputesAreRefusedByName() =>
        // 28 px → 14 → 7 → 4: a 7 × 7 stage on a 4 × 4 grid has bins of 2 and 3 rows.
        Assert.That(() => EncoderOnnxExporter.ToModel(new ResNetEncoder(new EncoderOptions { EmbeddingGrid = 4 }), new EncoderOnnxOptions()),
            Throws.TypeOf<NotSupportedException>().With.Message.Contains("size 7").And.Message.Contains("4 regions"));

    [Test]
    public void L2NormalisedOutputHasUnitRows()
    {
        var encoder = WarmedEncoder(EncoderOptions.For(1, 28));
        using var folder = TestData.NewFolder();
        EncoderOnnxExporter.Export(encoder, folder["e.onnx"], new EncoderOnnxOptions { L2Normalize = true });
        using var embedder = new ImageEmbedder(folder["e.onnx"]);
        var embeddings = embedder.Embed(TestData.SampleTrain(20));
        for (var i = 0; i < embeddings.Count; i++)
            Assert.That(Math.Sqrt(embeddings.Row(i).ToArray().Sum(v => v * v)), Is.EqualTo(1.0).Within(1e-5));
    }

    [Test]
    public void PassesTheOfficialOnnxChecker()
    {
        var encoder = WarmedEncoder(EncoderOptions.For(1, 28));
        using var folder = TestData.NewFolder();
        EncoderOnnxExporter.Export(encoder, folder["checked.onnx"], new EncoderOnnxOptions { L2Normalize = true });
        var (exitCode, output) = Python($"import onnx; onnx.checker.check_model(onnx.load('{folder["checked.onnx"]}'), full_check=True); print('valid')");
        Assert.That(exitCode, Is.Zero, output);
        Assert.That(output.Trim(), Is.EqualTo("valid"));
    }

    [Test]
    public void UnsupportedModuleIsNamed()
    {
        var sequence = nn.Sequential(("conv", nn.Conv2d(1, 4, 3)), ("act", nn.Sigmoid()));
        Assert.That(() => EncoderOnnxExporter.Sequence(new OnnxGraphBuilder("g"), sequence, "head", "x"),
            Throws.TypeOf<NotSupportedException>().With.Message.StartsWith("Module 'head.act' (Sigmoid) cannot be exported to ONNX"));
    }

    [Test]
    public void CorruptOnnxFileIsNamed()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllText(folder["broken.onnx"], "this is not protobuf");
        Assert.That(() => new ImageEmbedder(folder["broken.onnx"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["broken.onnx"] + ": not a loadable ONNX model"));
    }

    [Test]
    public void CudaProviderIsOnlyAskedForWhenItsLibrariesLoad()
    {
        var provider = CudaProvider.ProviderPath();
        Assert.That(provider, Is.Not.Null, "the tests reference Microsoft.ML.OnnxRuntime.Gpu");
        var needed = ElfVersions.NeededLibraries(provider!);
        Assert.That(needed, Does.Contain("libcuda.so.1").And.Contain("libc.so.6").And.Some.StartsWith("libcudart.so."));
        // Where a CUDA library is missing, the reason names it and ONNX Runtime is never asked to load the provider.
        if (CudaProvider.Unavailable is { } reason)
        {
            Assert.That(needed.Any(name => reason.Contains(name)), Is.True, reason);
            using var folder = TestData.NewFolder();
            EncoderOnnxExporter.Export(new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }), folder["e.onnx"]);
            var lines = new List<string>();
            using var embedder = new ImageEmbedder(folder["e.onnx"], new ImageEmbedderOptions { UseCuda = true, Log = lines.Add });
            Assert.That(embedder.ExecutionProvider, Is.EqualTo("CPU"));
            Assert.That(lines[0], Is.EqualTo($"ImageEmbedder: the CUDA execution provider is not available ({reason}); running on the CPU."));
        }
    }

    [Test]
    public void CudaRequestSaysWhichProviderRunsAndGivesTheSameNumbers()
    {
        var encoder = WarmedEncoder(EncoderOptions.For(1, 28));
        using var folder = TestData.NewFolder();
        EncoderOnnxExporter.Export(encoder, folder["e.onnx"]);
        var data = TestData.SampleTrain(50);
        var lines = new List<string>();
        using var cuda = new ImageEmbedder(folder["e.onnx"], new ImageEmbedderOptions { UseCuda = true, Log = lines.Add });
        using var cpu = new ImageEmbedder(folder["e.onnx"]);
        Assert.That(lines.Last(), Is.EqualTo($"ImageEmbedder: running e.onnx on the {cuda.ExecutionProvider} execution provider."));
        var difference = cuda.Embed(data).Values.Zip(cpu.Embed(data).Values, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(difference, Is.LessThanOrEqualTo(1e-4f));
    }

    [Test]
    public void AnOnnxFileWithNonFiniteWeightsIsRefusedByName()
    {
        using var folder = TestData.NewFolder();
        var model = EncoderOnnxExporter.ToModel(new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }), new EncoderOnnxOptions());
        var weight = model.Graph.Initializer.First(i => i.RawData.Length >= 8);
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(weight.RawData.ToByteArray()).ToArray();
        values[1] = float.NaN;
        weight.RawData = Google.Protobuf.ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        File.WriteAllBytes(folder["nan.onnx"], Google.Protobuf.MessageExtensions.ToByteArray(model));
        Assert.That(() => new ImageEmbedder(folder["nan.onnx"]),
            Throws.TypeOf<InvalidDataException>().With.Message.EqualTo(
                $"{folder["nan.onnx"]}: the ONNX model's weight '{weight.Name}' holds NaN or infinite values (the training that produced it diverged); it would score every image as NaN."));
    }

    internal static (int ExitCode, string Output) Python(string code)
    {
        var start = new ProcessStartInfo("/usr/bin/python3", ["-c", code]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start /usr/bin/python3");
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (output.Contains("No module named 'onnx'")) output += "\nInstall Debian's python3-onnx (apt-get install python3-onnx), or run build/test, which does.";
        return (process.ExitCode, output);
    }
}
