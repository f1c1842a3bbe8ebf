using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Evaluation;

public class ReconstructionEnergyTests
{
    /// <summary>One epoch of MAE (decoder 1 × 32) on the first <paramref name="images"/> sample images with the tiny ViT, saved at <paramref name="checkpoint"/>.</summary>
    internal static void TrainTinyMae(string checkpoint, int images = 256, int batchSize = 64) => new Pretrainer(new PretrainOptions
    {
        Method = new MaeOptions { DecoderDimension = 32, DecoderDepth = 1, DecoderHeads = 2 }, Run = { Epochs = 1, BatchSize = batchSize, Seed = 3, Threads = 2, Device = "cpu" }, CheckpointPath = checkpoint,
        Encoder = TestData.TinyVit(),
    }).Fit(TestData.SampleTrain(images));

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
    /// Scores do not depend on the other images of a call, the calibration round-trips through its file, and training
    /// lowers the reconstruction error of the training images (6 epochs against 1).
    /// </summary>
    [Test]
    public void NoisyAndOccludedImagesScoreHigherThanCleanOnes()
    {
        using var folder = TestData.NewFolder();
        PretrainOptions Run(int epochs, string checkpoint) => new()
        {
            Method = new MaeOptions { DecoderDimension = 32, DecoderDepth = 1, DecoderHeads = 2 }, Run = { Epochs = epochs, BatchSize = 128, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 1e-3 }, WarmupFraction = 0.1, CheckpointPath = folder[checkpoint],
            Encoder = new EncoderOptions { Architecture = EncoderArchitecture.VisionTransformer, ImageSize = 28, PatchSize = 4, Depth = 2, HiddenDimension = 32, Heads = 2, MlpDimension = 64 },
        };
        var training = TestData.SampleTrain(1024);
        new Pretrainer(Run(1, "early.bin")).Fit(training);
        new Pretrainer(Run(6, "m.bin")).Fit(training);

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
        var (before, after) = (ReconstructionEnergy.Load(folder["early.bin"]).Errors(training).Average(), energy.Errors(training).Average());
        TestContext.Out.WriteLine($"mean reconstruction error of the training images: after 1 epoch {before:F3}, after 6 {after:F3}");
        Assert.That(after, Is.LessThan(0.8 * before), "training improves the reconstruction of the training images");
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

    /// <summary>A damaged, truncated or degenerate calibration file is refused by name, never used.</summary>
    [Test]
    public void ADamagedCalibrationFileIsRefusedByName()
    {
        using var folder = TestData.NewFolder();
        var good = new EnergyCalibration([1, 1], [1, 0.5], 0.5, 2, 1, 0.5, 10, 0, "AB");
        good.Save(folder["c.json"]);
        Assert.That(EnergyCalibration.Load(folder["c.json"]).PatchLogStd, Is.EqualTo(good.PatchLogStd));
        var text = File.ReadAllText(folder["c.json"]);
        File.WriteAllText(folder["c.json"], text[..(text.Length / 2)]);
        Assert.That(() => EnergyCalibration.Load(folder["c.json"]), Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["c.json"] + " is not an energy calibration"));
        File.WriteAllText(folder["c.json"], "{}");
        Assert.That(() => EnergyCalibration.Load(folder["c.json"]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("no per-position statistics"));
        (good with { PatchLogStd = [1, 0] }).Save(folder["c.json"]);
        Assert.That(() => EnergyCalibration.Load(folder["c.json"]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("standard deviations positive"));
    }

    /// <summary>
    /// <c>energy</c> writes a row per image whose energy is the library's, calibrates on <c>--reference</c> (its images then
    /// average 0), writes the calibration, which a later call reads back with <c>--calibration</c>, and a page with the
    /// energies' histogram and the highest-energy images as the MAE saw and rebuilt them.
    /// </summary>
    [Test]
    public void EnergyCommandWritesTheLibrarysScoresAndReusesItsCalibration()
    {
        using var folder = TestData.NewFolder();
        TrainTinyMae(folder["m.bin"]);
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
        Assert.That(File.Exists(folder["e.calibration.json"]) && File.Exists(folder["e.onnx"]), Is.True);
        var page = File.ReadAllText(folder["e.html"]);
        Assert.That(page, Does.Contain("<svg").And.Contain("reference images (1,000)"), "the histogram of scored and reference energies");
        Assert.That(System.Text.RegularExpressions.Regex.Count(page, "<br>seen by the MAE<"), Is.EqualTo(MLNet.Contrastive.Reporting.EnergyPage.DefaultShown), "the highest energies, each with its masked view");
        Assert.That(System.Text.RegularExpressions.Regex.Count(page, "data:image/png"), Is.EqualTo(3 * MLNet.Contrastive.Reporting.EnergyPage.DefaultShown));

        // What the page shows: visible patches as they are, hidden ones grey (masked) or predicted (reconstructed).
        var (masked, reconstructed) = library.Reconstructions(images.Subset([7]));
        var (original, hidden, seen) = (images.Image(7).ToArray(), masked.Image(0).ToArray(), reconstructed.Image(0).ToArray());
        var visible = library.Masks[0].SelectMany(p => Enumerable.Range(0, 16).Select(k => (p / 7 * 4 + k / 4) * 28 + p % 7 * 4 + k % 4)).ToHashSet();
        Assert.That(Enumerable.Range(0, 784).All(i => visible.Contains(i) ? hidden[i] == original[i] && seen[i] == original[i] : hidden[i] == 128), Is.True);
        Assert.That(Enumerable.Range(0, 784).Count(i => !visible.Contains(i) && seen[i] != 128), Is.GreaterThan(300), "hidden patches are predicted");

        Assert.That(Energy("--calibration", folder["e.calibration.json"], "--out", folder["again.csv"]), Is.Zero);
        Assert.That(File.ReadAllLines(folder["again.csv"]), Is.EqualTo(rows));
    }

    /// <summary>
    /// The exported energy graph (encoder and decoder once per cover mask, targets, calibration) gives in ONNX Runtime
    /// the library's energies, for clean and noisy images, and passes onnx's full checker.
    /// </summary>
    [Test]
    public void ExportedEnergyEqualsTheLibrarysAndPassesTheOnnxChecker()
    {
        using var folder = TestData.NewFolder();
        TrainTinyMae(folder["m.bin"]);
        var energy = ReconstructionEnergy.Load(folder["m.bin"]);
        var calibration = energy.Calibrate(TestData.SampleTrain(300));
        MLNet.Contrastive.Onnx.EnergyOnnxExporter.Export(energy, calibration, folder["energy.onnx"]);

        var random = new Random(5);
        var images = TestData.SampleTrain(400).Subset([.. Enumerable.Range(300, 100)]);
        var noisy = Corrupted(images, (_, v) => v + 40 * (random.NextDouble() - 0.5));
        using var session = new MLNet.Contrastive.Onnx.ImageEmbedder(folder["energy.onnx"], new MLNet.Contrastive.Onnx.ImageEmbedderOptions { BatchSize = 32 });
        foreach (var set in new[] { images, noisy })
        {
            var expected = energy.Energy(set, calibration);
            var actual = session.Embed(set).Values;
            var largest = expected.Zip(actual, (e, a) => Math.Abs(e - a) / Math.Max(1, Math.Abs(e))).Max();
            TestContext.Out.WriteLine($"energies {expected.Min():F2} … {expected.Max():F2}; max |ONNX − TorchSharp| / max(1, |energy|) = {largest:G3}");
            Assert.That(largest, Is.LessThanOrEqualTo(1e-4));
        }
        var (exitCode, output) = Onnx.EncoderOnnxExporterTests.Python($"import onnx; onnx.checker.check_model(onnx.load('{folder["energy.onnx"]}'), full_check=True); print('valid')");
        Assert.That((exitCode, output.Trim()), Is.EqualTo((0, "valid")), output);
    }

    /// <summary>A calibration is refused, by what differs, under another mask seed or with other weights; the same run loaded again accepts it.</summary>
    [Test]
    public void ACalibrationForAnotherSeedOrOtherWeightsIsRefused()
    {
        using var folder = TestData.NewFolder();
        TrainTinyMae(folder["m.bin"], images: 64, batchSize: 32);
        var images = TestData.SampleTrain(64);
        var calibration = ReconstructionEnergy.Load(folder["m.bin"]).Calibrate(images);
        Assert.That(ReconstructionEnergy.Load(folder["m.bin"]).Energy(images, calibration), Has.Length.EqualTo(64), "the same weights, loaded again");
        Assert.That(() => ReconstructionEnergy.Load(folder["m.bin"], seed: 1).Energy(images, calibration),
            Throws.ArgumentException.With.Message.Contains("made under mask seed 0; this energy uses seed 1"));
        var energy = ReconstructionEnergy.Load(folder["m.bin"]);
        Assert.That(() => energy.Energy(images, calibration with { Fingerprint = "0123" }), Throws.ArgumentException.With.Message.Contains("other MAE weights"));
        Assert.That(() => MLNet.Contrastive.Onnx.EnergyOnnxExporter.Export(energy, calibration with { Fingerprint = "0123" }, folder["e.onnx"]),
            Throws.ArgumentException.With.Message.Contains("other MAE weights"));
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
