using Microsoft.ML.Data;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Tests;

/// <summary>The bundled Fashion-MNIST sample and helpers that write small real image files.</summary>
internal static class TestData
{
    public static string SampleFile(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "Sample", name);

    public static string TrainImages => SampleFile("train-images-idx3-ubyte.gz");
    public static string TrainLabels => SampleFile("train-labels-idx1-ubyte.gz");

    private static readonly Lazy<ImageStore> Train = new(() => ImageStore.Load(TrainImages, TrainLabels));

    /// <summary>The first <paramref name="count"/> training images of the sample, 1×28×28, labelled.</summary>
    public static ImageStore SampleTrain(int count) => Train.Value.Subset(Enumerable.Range(0, count).ToArray());

    /// <summary>The rows of a [N, D] float tensor as double arrays, for reference formulas.</summary>
    public static IEnumerable<double[]> Rows(TorchSharp.torch.Tensor matrix)
    {
        var values = matrix.data<float>().ToArray();
        var d = (int)matrix.shape[1];
        for (var i = 0; i < matrix.shape[0]; i++) yield return values.Skip(i * d).Take(d).Select(v => (double)v).ToArray();
    }

    /// <summary>Whether two tensors have the same shape and exactly the same values.</summary>
    public static bool Same(TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.cpu().eq(b.cpu()).all().item<bool>();

    /// <summary>The largest absolute difference between two lists of equally long rows.</summary>
    public static float MaxDifference(float[][] rows, float[][] other) =>
        rows.Zip(other, (a, b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max()).Max();

    /// <summary>The masked-image methods' tiny ViT for 28 px images: 4 px patches (a 7 × 7 grid), 2 blocks of width 32.</summary>
    public static MLNet.Contrastive.Models.EncoderOptions TinyVit() => new()
    {
        Architecture = MLNet.Contrastive.Models.EncoderArchitecture.VisionTransformer, ImageSize = 28, PatchSize = 4, Depth = 2, HiddenDimension = 32, Heads = 2, MlpDimension = 64,
    };

    /// <summary>Exports <paramref name="encoder"/> to <paramref name="onnxPath"/> and asserts ONNX Runtime's embedding of 100 sample images equals TorchSharp's within 1e-4.</summary>
    public static void AssertOnnxMatchesTorch(MLNet.Contrastive.Models.ImageEncoder encoder, string onnxPath)
    {
        MLNet.Contrastive.Onnx.EncoderOnnxExporter.Export(encoder, onnxPath);
        using var embedder = new MLNet.Contrastive.Onnx.ImageEmbedder(onnxPath, new MLNet.Contrastive.Onnx.ImageEmbedderOptions { BatchSize = 64 });
        var probe = SampleTrain(100);
        var largest = embedder.Embed(probe).Values.Zip(MLNet.Contrastive.Metrics.Embeddings.FromEncoder(encoder, probe).Values, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(largest, Is.LessThanOrEqualTo(1e-4f), $"max |ONNX − TorchSharp| = {largest:G3}");
    }

    /// <summary>A temporary folder deleted when the returned handle is disposed.</summary>
    public static TempFolder NewFolder() => new();

    /// <summary>Writes an image file of the given size; colour pattern depends on <paramref name="seed"/>.</summary>
    public static void WriteImage(string path, int width, int height, int seed, bool gray = false)
    {
        var pixels = new byte[width * height * 4];
        var random = new Random(seed);
        for (var p = 0; p < width * height; p++)
        {
            var r = (byte)random.Next(256);
            pixels[p * 4] = gray ? r : (byte)random.Next(256);
            pixels[p * 4 + 1] = gray ? r : (byte)random.Next(256);
            pixels[p * 4 + 2] = r;
            pixels[p * 4 + 3] = 255;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var image = MLImage.CreateFromPixels(width, height, MLPixelFormat.Bgra32, pixels);
        image.Save(path);
    }

    /// <summary>A row of an image-path data view: the path, a number, the class name.</summary>
    internal sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public float Score { get; set; }
        public string Label { get; set; } = "";
    }

    /// <summary>The first <paramref name="count"/> sample images written as PNG files.</summary>
    public static List<ImageRow> WriteSampleImages(TestData.TempFolder folder, int count)
    {
        var sample = TestData.SampleTrain(count);
        var rows = new List<ImageRow>();
        for (var i = 0; i < count; i++)
        {
            using var image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, sample.Bgra(i));
            var path = folder[$"img{i:D4}.png"];
            image.Save(path);
            rows.Add(new ImageRow { ImagePath = path, Label = sample.LabelNames![sample.Labels![i]] });
        }
        return rows;
    }

    /// <summary>The folder holding MLNet.Contrastive.sln, above the test binaries.</summary>
    public static string RepositoryRoot
    {
        get
        {
            var root = TestContext.CurrentContext.TestDirectory;
            while (!File.Exists(Path.Combine(root, "MLNet.Contrastive.sln"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("repository root");
            return root;
        }
    }

    /// <summary>
    /// Runs docs/samples/ScoreInPlainMLNet (which references no MLNet.Contrastive) in its own process: on this repository's
    /// ML.NET, or with <paramref name="mlNet5"/> the same program built against ML.NET 5.0.1 (docs/samples/ScoreInPlainMLNet5).
    /// </summary>
    public static Dictionary<string, (string? Label, float[] Embedding)> ScoreWithPlainMlNetApp(string model, string images, string csv, bool mlNet5 = false)
    {
        var app = mlNet5 ? "ScoreInPlainMLNet5" : "ScoreInPlainMLNet";
        var project = Path.Combine(RepositoryRoot, "docs", "samples", app);
        Assert.That(File.ReadAllText(Path.Combine(project, app + ".csproj")), Does.Not.Contain("ProjectReference"));
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", ["run", "--project", project, "-c", "Release", "--", model, images, csv])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, output.Result + errors);
        var labelled = File.ReadLines(csv).First().StartsWith("file,predicted_label,", StringComparison.Ordinal);
        return File.ReadLines(csv).Skip(1).Select(line => line.Split(',')).ToDictionary(f => f[0], f =>
            (labelled ? f[1] : null, f.Skip(labelled ? 2 : 1).Select(v => float.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()));
    }

    internal sealed class TempFolder : IDisposable
    {
        public TempFolder()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mlnc-test-" + Guid.NewGuid().ToString("N")[..12]);
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public string this[string relative] => System.IO.Path.Combine(Path, relative);

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
