using System.Diagnostics;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

/// <summary>
/// docs/methods.md's reconstruction-energy figures: an MAE trained on the training images of every class but one,
/// calibrated on them, against the test images of the seen classes clean, with Gaussian noise (σ = 0.2 of the range),
/// with a flat mid-grey square over 30 % of the image, and the test images of the unseen class: AUROC of the energy and
/// of the plain mean reconstruction error.
/// </summary>
internal static class EnergyBench
{
    public static int Energy(ImageStore train, ImageStore test, Func<string, string?, string> arg, int seed, int threads)
    {
        var heldOut = int.Parse(arg("--held-out", "9"));
        var (epochs, width, depth) = (int.Parse(arg("--epochs", "20")), int.Parse(arg("--width", "64")), int.Parse(arg("--depth", "4")));
        var normalize = bool.Parse(arg("--normalize-targets", "true"));
        var seen = Enumerable.Range(0, train.Count).Where(i => train.Labels![i] != heldOut).ToArray();
        var training = train.Subset(seen);
        var checkpoint = arg("--run", "") is { Length: > 0 } run ? run : Path.Combine(Path.GetTempPath(), $"energy-bench-{Guid.NewGuid():N}.bin");
        var clock = Stopwatch.StartNew();
        if (!File.Exists(checkpoint))
            new Pretrainer(new PretrainOptions
            {
                Method = new MaeOptions { DecoderDimension = width, DecoderDepth = 2, DecoderHeads = 4, NormalizePixelTargets = normalize },
                Run = { Epochs = epochs, BatchSize = 128, Seed = seed, Threads = threads, Device = "cpu", LearningRate = 1e-3 }, WarmupFraction = 0.1, CheckpointPath = checkpoint,
                Encoder = new EncoderOptions
                {
                    Architecture = EncoderArchitecture.VisionTransformer, ImageSize = train.Height, PatchSize = 4, Depth = depth, HiddenDimension = width, Heads = 4, MlpDimension = 2 * width,
                },
            }).Fit(training);
        var trainSeconds = clock.Elapsed.TotalSeconds;

        var clean = test.Subset([.. Enumerable.Range(0, test.Count).Where(i => test.Labels![i] != heldOut)]);
        var unseen = test.Subset([.. Enumerable.Range(0, test.Count).Where(i => test.Labels![i] == heldOut)]);
        var random = new Random(7);
        double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var noisy = Corrupted(clean, (_, v) => v + 0.2 * 255 * Gaussian());
        var side = (int)Math.Round(Math.Sqrt(0.3 * clean.Height * clean.Width));
        var corners = Enumerable.Range(0, clean.Count).Select(_ => (Row: random.Next(0, clean.Height - side + 1), Column: random.Next(0, clean.Width - side + 1))).ToArray();
        var pixels = clean.Height * clean.Width;
        var occluded = Corrupted(clean, (i, v) =>
        {
            var (image, row, column) = (i / (pixels * clean.Channels), i % pixels / clean.Width, i % clean.Width);
            return row >= corners[image].Row && row < corners[image].Row + side && column >= corners[image].Column && column < corners[image].Column + side ? 128 : v;
        });

        var energy = ReconstructionEnergy.Load(checkpoint, seed);
        clock.Restart();
        var calibration = energy.Calibrate(training);
        var sets = new[] { clean, noisy, occluded, unseen }.Select(s => energy.Score(s, calibration)).ToArray();
        var scoreSeconds = clock.Elapsed.TotalSeconds;
        string Pair(int set) => $"{Auroc(sets[0].Energy, sets[set].Energy):F3} ({Auroc(sets[0].Error, sets[set].Error):F3})";
        var name = train.LabelNames?[heldOut] ?? heldOut.ToString();
        Console.WriteLine($"| {name} | ViT {depth}×{width}, {epochs} epochs on {training.Count:N0}{(normalize ? "" : ", raw-pixel targets")} | {trainSeconds:F0} | {Pair(1)} | {Pair(2)} | {Pair(3)} |");
        Console.WriteLine($"<!-- {clean.Count} clean, {unseen.Count} unseen test images; occluder {side}×{side}; calibration and scoring {scoreSeconds:F0} s; checkpoint {checkpoint} -->");
        return 0;
    }

    /// <summary>The fraction of (clean, other) pairs in which the other image scores higher (ties count half).</summary>
    private static double Auroc(float[] clean, float[] other)
    {
        var sorted = clean.Order().ToArray();
        double total = 0;
        foreach (var o in other)
        {
            var below = LowerBound(sorted, o);
            var notAbove = LowerBound(sorted, MathF.BitIncrement(o));
            total += below + 0.5 * (notAbove - below);
        }
        return total / ((double)clean.Length * other.Length);
    }

    private static int LowerBound(float[] sorted, float value)
    {
        var (low, high) = (0, sorted.Length);
        while (low < high)
        {
            var middle = (low + high) / 2;
            if (sorted[middle] < value) low = middle + 1; else high = middle;
        }
        return low;
    }

    private static ImageStore Corrupted(ImageStore images, Func<int, double, double> change)
    {
        var pixels = images.Images(0, images.Count).ToArray();
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)Math.Clamp(Math.Round(change(i, pixels[i])), 0, 255);
        return new ImageStore(pixels, images.Channels, images.Height, images.Width, images.Labels, images.LabelNames, [.. images.Sources], []);
    }
}
