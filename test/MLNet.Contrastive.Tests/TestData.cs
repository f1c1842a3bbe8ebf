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
