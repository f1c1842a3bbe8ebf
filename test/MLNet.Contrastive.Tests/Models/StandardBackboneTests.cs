using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Models;

/// <summary>Every standard backbone trains a SimCLR and a BYOL step on RGB images, and its ONNX export equals TorchSharp.</summary>
public class StandardBackboneTests
{
    /// <summary>32 real Fashion-MNIST images as 32 px RGB, each garment tinted by its own colour (so the channels differ).</summary>
    internal static ImageStore RgbImages(int count = 32)
    {
        var gray = TestData.SampleTrain(count);
        const int size = 32;
        var pixels = new byte[count * 3 * size * size];
        var random = new Random(5);
        for (var n = 0; n < count; n++)
        {
            var image = gray.Image(n);
            var tint = new[] { random.NextDouble(), random.NextDouble(), random.NextDouble() };
            for (var c = 0; c < 3; c++)
                for (var y = 0; y < size; y++)
                    for (var x = 0; x < size; x++)
                    {
                        // The 28 px image centred in 32 px.
                        var (sy, sx) = (y - 2, x - 2);
                        var value = sy is >= 0 and < 28 && sx is >= 0 and < 28 ? image[sy * 28 + sx] : 0;
                        pixels[((n * 3 + c) * size + y) * size + x] = (byte)Math.Round(value * (0.3 + 0.7 * tint[c]));
                    }
        }
        return new ImageStore(pixels, 3, size, size, gray.Labels, gray.LabelNames, [.. gray.Sources], []);
    }

    [TestCase(EncoderPreset.ResNet18, "simclr")]
    [TestCase(EncoderPreset.ResNet34, "byol")]
    [TestCase(EncoderPreset.ResNet50, "simclr")]
    [TestCase(EncoderPreset.ResNet50, "byol")]
    [TestCase(EncoderPreset.VitTiny, "simclr")]
    [TestCase(EncoderPreset.VitTiny, "byol")]
    public void TrainsAStepAndItsOnnxEqualsTorchSharp(EncoderPreset preset, string method)
    {
        var data = RgbImages();
        var encoder = EncoderOptions.For(3, 32, preset);
        var options = new PretrainOptions
        {
            Run = { Epochs = 1, BatchSize = 16, Seed = 4, Threads = 2, Device = "cpu", LearningRate = 1e-3 }, WarmupFraction = 0,
            Encoder = encoder, Method = PretrainingMethods.Defaults(method),
        };
        var result = new Pretrainer(options).Fit(data);
        Assert.That(result.Steps, Is.EqualTo(2));
        Assert.That(result.History.Steps.All(s => double.IsFinite(s.Loss)), Is.True);
        Assert.That(result.Encoder.EmbeddingDimension, Is.EqualTo(preset switch { EncoderPreset.ResNet50 => 2048, EncoderPreset.VitTiny => 192, _ => 512 }));

        using var folder = TestData.NewFolder();
        EncoderOnnxExporter.Export(result.Encoder, folder["encoder.onnx"], new EncoderOnnxOptions { Height = 32, Width = 32 });
        using var embedder = new ImageEmbedder(folder["encoder.onnx"], new ImageEmbedderOptions { BatchSize = 16 });
        var onnx = embedder.Embed(data);
        var torch = Embeddings.FromEncoder(result.Encoder, data);
        var largest = onnx.Values.Zip(torch.Values, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(largest, Is.LessThanOrEqualTo(1e-4f), $"max |ONNX − TorchSharp| = {largest:G3}");
        Assert.That(torch.Values.Max(Math.Abs), Is.GreaterThan(0.05f), $"the comparison is on non-trivial values: {string.Join(", ", torch.Values.Take(8))}; NaN {torch.Values.Count(float.IsNaN)}");
    }
}
