using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Evaluation;

public class ReconstructionEnergyTests
{
    /// <summary>Fraction of (corrupted, clean) pairs in which the corrupted image has the higher energy: the AUROC of the energy as a detector.</summary>
    private static double Auroc(float[] clean, float[] corrupted) =>
        corrupted.Sum(c => clean.Count(x => c > x) + 0.5 * clean.Count(x => c == x)) / ((double)clean.Length * corrupted.Length);

    /// <summary>The images with every pixel changed by <paramref name="change"/> (pixel index, value 0–255 → new value), rounded and clamped to 0–255.</summary>
    private static ImageStore Corrupted(ImageStore images, Func<int, double, double> change)
    {
        var pixels = images.Images(0, images.Count).ToArray();
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)Math.Clamp(Math.Round(change(i, pixels[i])), 0, 255);
        return new ImageStore(pixels, images.Channels, images.Height, images.Width, images.Labels, images.LabelNames, [.. images.Sources], []);
    }

    /// <summary>
    /// An MAE trained for a few epochs on 1,024 Fashion-MNIST images gives held-out images with Gaussian noise (σ = 0.2 of
    /// the pixel range) a higher energy than the same images clean, for nearly every pair; the energy is deterministic.
    /// </summary>
    [Test]
    public void NoisyImagesScoreHigherThanCleanOnes()
    {
        using var folder = TestData.NewFolder();
        var options = new PretrainOptions
        {
            Method = new MaeOptions { DecoderDimension = 32, DecoderDepth = 1, DecoderHeads = 2 }, Run = { Epochs = 6, BatchSize = 128, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 1e-3 }, WarmupFraction = 0.1, CheckpointPath = folder["m.bin"],
            Encoder = new EncoderOptions { Architecture = EncoderArchitecture.VisionTransformer, ImageSize = 28, PatchSize = 4, Depth = 2, HiddenDimension = 32, Heads = 2, MlpDimension = 64 },
        };
        new Pretrainer(options).Fit(TestData.SampleTrain(1024));

        var heldOut = TestData.SampleTrain(6000).Subset(Enumerable.Range(5000, 200).ToArray());
        var random = new Random(7);
        double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var noisy = Corrupted(heldOut, (_, v) => v + 0.2 * 255 * Gaussian());
        // A 15 × 15 mid-grey square (30 % of the image) at a random place per image.
        var corners = Enumerable.Range(0, heldOut.Count).Select(_ => (Row: random.Next(0, 14), Column: random.Next(0, 14))).ToArray();
        var occluded = Corrupted(heldOut, (i, v) =>
        {
            var (image, row, column) = (i / 784, i % 784 / 28, i % 28);
            return row >= corners[image].Row && row < corners[image].Row + 15 && column >= corners[image].Column && column < corners[image].Column + 15 ? 128 : v;
        });

        var clean = ReconstructionEnergy.Score(folder["m.bin"], heldOut);
        var noise = ReconstructionEnergy.Score(folder["m.bin"], noisy);
        var occlusion = ReconstructionEnergy.Score(folder["m.bin"], occluded);
        TestContext.Out.WriteLine($"mean energy clean {clean.Average():F4}, noise {noise.Average():F4}, occlusion {occlusion.Average():F4}; " +
            $"AUROC noise {Auroc(clean, noise):F3}, occlusion {Auroc(clean, occlusion):F3}");
        Assert.That(Auroc(clean, noise), Is.GreaterThanOrEqualTo(0.9));
        Assert.That(ReconstructionEnergy.Score(folder["m.bin"], heldOut), Is.EqualTo(clean), "the same images get the same energy");
    }

    [Test]
    public void OtherMethodsCheckpointsAreRefusedByName()
    {
        using var folder = TestData.NewFolder();
        new Pretrainer(new PretrainOptions
        {
            Method = new SimClrOptions(), Run = { Epochs = 1, BatchSize = 32, Seed = 3, Threads = 2, Device = "cpu" }, CheckpointPath = folder["s.bin"],
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        }).Fit(TestData.SampleTrain(64));
        Assert.That(() => ReconstructionEnergy.Score(folder["s.bin"], TestData.SampleTrain(8)),
            Throws.ArgumentException.With.Message.Contains("needs an MAE run").And.Message.Contains("'simclr'"));
    }
}
