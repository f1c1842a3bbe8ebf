using MLNet.Contrastive.Augmentation;
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
    /// An MAE trained for a few epochs on 1,024 Fashion-MNIST images and calibrated on them gives held-out images with
    /// Gaussian noise (σ = 0.2 of the pixel range) and held-out images with a flat mid-grey 15 × 15 occluder (30 % of the
    /// image) a higher energy than the same images clean, for nearly every pair; the raw mean error ranks the occluded
    /// images *below* the clean ones (a flat patch is easy to predict), which is what the calibration's squared term is for.
    /// Scores do not depend on the other images of a call, and the calibration round-trips through its file.
    /// </summary>
    [Test]
    public void NoisyAndOccludedImagesScoreHigherThanCleanOnes()
    {
        using var folder = TestData.NewFolder();
        var options = new PretrainOptions
        {
            Method = new MaeOptions { DecoderDimension = 32, DecoderDepth = 1, DecoderHeads = 2 }, Run = { Epochs = 6, BatchSize = 128, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 1e-3 }, WarmupFraction = 0.1, CheckpointPath = folder["m.bin"],
            Encoder = new EncoderOptions { Architecture = EncoderArchitecture.VisionTransformer, ImageSize = 28, PatchSize = 4, Depth = 2, HiddenDimension = 32, Heads = 2, MlpDimension = 64 },
        };
        var training = TestData.SampleTrain(1024);
        new Pretrainer(options).Fit(training);

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

        var energy = ReconstructionEnergy.Load(folder["m.bin"]);
        Assert.That(energy.Masks, Has.Count.EqualTo(5), "7 × 7 patches, 12 visible per mask");
        energy.Calibrate(training).Save(folder["calibration.json"]);
        var calibration = EnergyCalibration.Load(folder["calibration.json"]);
        var clean = energy.Energy(heldOut, calibration);
        var noise = energy.Energy(noisy, calibration);
        var occlusion = energy.Energy(occluded, calibration);
        var (rawClean, rawOcclusion) = (energy.Errors(heldOut), energy.Errors(occluded));
        TestContext.Out.WriteLine($"mean energy clean {clean.Average():F3}, noise {noise.Average():F3}, occlusion {occlusion.Average():F3}; " +
            $"AUROC noise {Auroc(clean, noise):F3}, occlusion {Auroc(clean, occlusion):F3}; raw mean error's occlusion AUROC {Auroc(rawClean, rawOcclusion):F3}");
        Assert.That(Auroc(clean, noise), Is.GreaterThanOrEqualTo(0.9));
        Assert.That(Auroc(clean, occlusion), Is.GreaterThanOrEqualTo(0.9));
        Assert.That(Auroc(rawClean, rawOcclusion), Is.LessThan(0.5), "a flat occluder lowers the raw error");
        var alone = energy.Energy(heldOut.Subset([3]), calibration);
        Assert.That(alone[0], Is.EqualTo(clean[3]).Within(1e-4), "an image scores the same alone as in a batch");
    }

    /// <summary>The cover masks hide every patch at least once, show each exactly ⌊L·(1 − r)⌋, and depend only on the seed.</summary>
    [Test]
    public void CoverMasksHideEveryPatchAndDependOnlyOnTheSeed()
    {
        var masks = PatchMasking.Cover(49, 0.75, 0);
        Assert.That(masks, Has.Count.EqualTo(5));
        Assert.That(masks.All(m => m.Length == 12 && m.Distinct().Count() == 12), Is.True);
        Assert.That(masks.SelectMany(m => m).Distinct().Count(), Is.EqualTo(49), "every patch is visible in one mask");
        Assert.That(Enumerable.Range(0, 49).Min(p => masks.Count(m => !m.Contains(p))), Is.EqualTo(3), "and hidden in 3 or 4 of the 5 (11 are visible twice)");
        Assert.That(PatchMasking.Cover(49, 0.75, 0), Is.EqualTo(masks));
        Assert.That(PatchMasking.Cover(49, 0.75, 1), Is.Not.EqualTo(masks));

        var fixedMask = PatchMasking.Fixed([4, 1], 6, 2);
        Assert.That(fixedMask.Keep.data<long>().ToArray(), Is.EqualTo(new long[] { 4, 1, 4, 1 }));
        Assert.That(fixedMask.Mask.data<float>().ToArray(), Is.EqualTo(new float[] { 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1 }));
        // [visible…, hidden…] = [4, 1, 0, 2, 3, 5]; restore puts each patch's position in that order back.
        Assert.That(fixedMask.Restore.data<long>().ToArray().Take(6), Is.EqualTo(new long[] { 2, 1, 3, 4, 0, 5 }));
    }

    /// <summary>The energy of hand-made log-errors: z-scores (0, 2) and (−1, −1) from mean (1, 1), std (1, 0.5).</summary>
    [Test]
    public void EnergyIsTheSumOfTheTwoStandardisedTerms()
    {
        var calibration = new EnergyCalibration([1, 1], [1, 0.5], MeanZMean: 0.5, MeanZStd: 2, MeanSquaredZMean: 1, MeanSquaredZStd: 0.5, ReferenceImages: 10);
        // log-errors (1, 2): z = (0, 2), mean 1, mean square 2 → (1 − 0.5) / 2 + (2 − 1) / 0.5 = 2.25.
        Assert.That(calibration.Energy([1, 2]), Is.EqualTo(2.25).Within(1e-12));
        // log-errors (0, 0.5): z = (−1, −1), mean −1, mean square 1 → (−1 − 0.5) / 2 + 0 = −0.75.
        Assert.That(calibration.Energy([0, 0.5]), Is.EqualTo(-0.75).Within(1e-12));
    }

    /// <summary>
    /// <c>energy</c> writes a row per image whose energy is the library's, calibrates on <c>--reference</c> (its images then
    /// average 0) and writes the calibration, which a later call reads back with <c>--calibration</c>.
    /// </summary>
    [Test]
    public void EnergyCommandWritesTheLibrarysScoresAndReusesItsCalibration()
    {
        using var folder = TestData.NewFolder();
        new Pretrainer(new PretrainOptions
        {
            Method = new MaeOptions { DecoderDimension = 32, DecoderDepth = 1, DecoderHeads = 2 }, Run = { Epochs = 1, BatchSize = 64, Seed = 3, Threads = 2, Device = "cpu" }, CheckpointPath = folder["m.bin"],
            Encoder = TestData.TinyVit(),
        }).Fit(TestData.SampleTrain(256));
        var data = TestData.SampleFile("t10k-images-idx3-ubyte.gz");
        int Energy(params string[] args) => MLNet.Contrastive.Cli.Commands.Commands.Root().Parse(["energy", "--model", folder["m.bin"], "--data", data, .. args]).Invoke();

        Assert.That(Energy("--reference", data, "--out", folder["e.csv"]), Is.Zero);
        var rows = File.ReadAllLines(folder["e.csv"]);
        Assert.That(rows[0], Is.EqualTo("source,energy,error"));
        Assert.That(rows, Has.Length.EqualTo(1001));
        var energies = rows.Skip(1).Select(r => double.Parse(r.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.That(energies.Average(), Is.EqualTo(0).Within(1e-3), "the reference images' energies are standardised");
        var library = ReconstructionEnergy.Load(folder["m.bin"]);
        var images = ImageStore.Load(data);
        var expected = library.Energy(images.Subset([0, 7]), library.Calibrate(images));
        Assert.That(new[] { energies[0], energies[7] }, Is.EqualTo(expected.Select(e => (double)e)).Within(1e-4));
        Assert.That(File.Exists(folder["e.html"]) && File.Exists(folder["e.calibration.json"]), Is.True);

        Assert.That(Energy("--calibration", folder["e.calibration.json"], "--out", folder["again.csv"]), Is.Zero);
        Assert.That(File.ReadAllLines(folder["again.csv"]), Is.EqualTo(rows));
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
        Assert.That(() => ReconstructionEnergy.Load(folder["s.bin"]),
            Throws.ArgumentException.With.Message.Contains("needs an MAE run").And.Message.Contains("'simclr'"));
    }
}
