using System.Text.Json;
using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Evaluation;

/// <summary>
/// A per-image energy from a trained MAE (the energy view of reconstruction: low for images like the training data,
/// higher for corrupted or unfamiliar ones). Every patch is hidden and predicted from the visible rest under a fixed set
/// of masks that together cover the image (<see cref="PatchMasking.Cover"/>, the same for every image), giving each
/// image a reconstruction error per patch position. <see cref="Calibrate"/> learns, from reference images the user calls
/// normal (the training images, say), the usual log-error at each position; an image's energy is then the sum of two
/// standardised terms over its positions' z-scores: their mean (patches harder to predict than usual: noise, texture)
/// and their mean square (patches atypical either way: a flat occluder makes them too easy). A raw mean error alone
/// cannot flag the occluder, which lowers it.
/// </summary>
public sealed class ReconstructionEnergy
{
    /// <summary>Added to each patch's squared error before its log (errors of flat background patches are near 0).</summary>
    public const double LogFloor = 1e-4;

    private readonly Mae mae;
    private readonly IReadOnlyList<int[]> masks;
    private readonly int seed;
    private string? fingerprint;

    /// <summary>The energy of the MAE <paramref name="mae"/> (used in eval mode, on its device), with its cover masks drawn from <paramref name="seed"/>.</summary>
    public ReconstructionEnergy(Mae mae, int seed = 0)
    {
        this.mae = mae;
        this.seed = seed;
        var options = mae.Encoder.Options;
        Patches = options.ImageSize / options.PatchSize * (options.ImageSize / options.PatchSize);
        masks = PatchMasking.Cover(Patches, mae.MaskRatio, seed);
    }

    /// <summary>The energy of the MAE run saved at <paramref name="checkpointPath"/> (a checkpoint or its run folder); other methods' runs are refused by name.</summary>
    public static ReconstructionEnergy Load(string checkpointPath, int seed = 0)
    {
        var (_, method) = Checkpoint.LoadMethod(RunFolder.FindCheckpoint(checkpointPath));
        return method is Mae mae
            ? new ReconstructionEnergy(mae, seed)
            : throw new ArgumentException($"{checkpointPath}: reconstruction energy needs an MAE run; this checkpoint is a '{method.Options.Name}' run.", nameof(checkpointPath));
    }

    internal Mae Mae => mae;

    /// <summary>The mask seed this energy was built with.</summary>
    public int Seed => seed;

    /// <summary>SHA-256 of the MAE's parameters and buffers: a calibration is only valid for the weights it was made with.</summary>
    public string Fingerprint => fingerprint ??= ComputeFingerprint();

    private string ComputeFingerprint()
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        using var noGrad = no_grad();
        foreach (var (name, tensor) in mae.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(mae.named_buffers()))
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
            using var values = tensor.detach().cpu().contiguous().to(ScalarType.Float32);
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.data<float>().ToArray().AsSpan()));
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>Refuses, by what differs, a calibration made for other weights, another mask seed or another patch grid.</summary>
    internal void Check(EnergyCalibration calibration)
    {
        if (calibration.PatchLogMean.Length != Patches)
            throw new ArgumentException($"The calibration is for {calibration.PatchLogMean.Length} patch positions; this MAE has {Patches}.", nameof(calibration));
        if (calibration.Seed != seed)
            throw new ArgumentException($"The calibration was made under mask seed {calibration.Seed}; this energy uses seed {seed}. Use the same seed, or calibrate again.", nameof(calibration));
        if (calibration.Fingerprint != Fingerprint)
            throw new ArgumentException("The calibration was made with other MAE weights than these (another run, or this run before more training); calibrate again on the reference images.", nameof(calibration));
    }

    /// <summary>Patch positions per image (L).</summary>
    public int Patches { get; }

    /// <summary>The masks applied to every image (each entry a mask's visible patches).</summary>
    public IReadOnlyList<int[]> Masks => masks;

    /// <summary>How many of the <see cref="Masks"/> hide each patch position, [L]: what a position's error is averaged over.</summary>
    internal int[] HiddenCounts => [.. Enumerable.Range(0, Patches).Select(p => masks.Count(visible => !visible.Contains(p)))];

    /// <summary>
    /// Each image's mean squared reconstruction error at each patch position, averaged over the masks that hide it:
    /// [N][L], against the targets the MAE was trained on. Images must be at the encoder's size and channels.
    /// </summary>
    public float[][] PatchErrors(ImageStore images, int batchSize = 256)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var options = mae.Encoder.Options;
        if (images.Height != options.ImageSize || images.Width != options.ImageSize || images.Channels != options.InputChannels)
            throw new ArgumentException(
                $"The images are {images.Channels}×{images.Height}×{images.Width}; the MAE was trained on {options.InputChannels}×{options.ImageSize}×{options.ImageSize}.", nameof(images));
        var device = mae.Encoder.parameters().First().device;
        var hidden = HiddenCounts;
        var errors = new float[images.Count][];
        var wasTraining = mae.training;
        mae.eval();
        try
        {
            using var noGrad = no_grad();
            for (var start = 0; start < images.Count; start += batchSize)
            {
                // The MAE's forward pass (its targets' standardisation among it) uses implicit Scalars, safe only in a pause.
                using var pause = CollectionPause.Begin();
                using var scope = NewDisposeScope();
                var indices = Enumerable.Range(start, Math.Min(batchSize, images.Count - start)).ToArray();
                var batch = images.Batch(indices, device);
                var total = zeros(indices.Length, Patches, device: device);
                foreach (var visible in masks)
                {
                    var mask = PatchMasking.Fixed(visible, Patches, indices.Length, device);
                    var prediction = mae.Reconstruct(batch, mask, out var target);
                    total.add_(MaeLoss.PerPatch(prediction, target, mask.Mask).mul_(mask.Mask));
                }
                var sums = total.cpu().data<float>().ToArray();
                for (var i = 0; i < indices.Length; i++)
                    errors[start + i] = [.. Enumerable.Range(0, Patches).Select(p => sums[i * Patches + p] / hidden[p])];
            }
        }
        finally
        {
            mae.train(wasTraining);
        }
        return errors;
    }

    /// <summary>How images must be loaded for this MAE: its encoder's channels and size.</summary>
    public ImageLoadOptions ImageLoadOptions => new()
    {
        Channels = mae.Encoder.Options.InputChannels, Height = mae.Encoder.Options.ImageSize, Width = mae.Encoder.Options.ImageSize,
    };

    /// <summary>
    /// What the MAE sees and makes of each image under cover mask <paramref name="mask"/>, for showing: the images with
    /// the hidden patches grey, and the images with the hidden patches replaced by the reconstruction (its standardised
    /// pixels put back at the true patch's mean and spread, as MAE's own figures do, when the MAE predicts standardised
    /// patches).
    /// </summary>
    public (ImageStore Masked, ImageStore Reconstructed) Reconstructions(ImageStore images, int mask = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(mask);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(mask, masks.Count);
        var (channels, size, patch) = (images.Channels, images.Height, mae.Encoder.Options.PatchSize);
        var masked = new byte[(long)images.Count * images.ImageSize];
        var reconstructed = new byte[masked.Length];
        var device = mae.Encoder.parameters().First().device;
        var wasTraining = mae.training;
        mae.eval();
        // Scalars held in locals outlive the native calls that read them (see CollectionPause).
        using var epsilon = 1e-6.ToScalar();
        using var one = 1f.ToScalar();
        using var grey = 0.5f.ToScalar();
        using var range = 255f.ToScalar();
        using var low = 0f.ToScalar();
        try
        {
            using var noGrad = no_grad();
            for (var start = 0; start < images.Count; start += 256)
            {
                using var pause = CollectionPause.Begin();
                using var scope = NewDisposeScope();
                var indices = Enumerable.Range(start, Math.Min(256, images.Count - start)).ToArray();
                var batch = images.Batch(indices, device);
                var fixedMask = PatchMasking.Fixed(masks[mask], Patches, indices.Length, device);
                var prediction = mae.Reconstruct(batch, fixedMask, out _);
                var pixels = MaeLoss.Patchify(batch, patch);
                if (mae.NormalizePixelTargets)
                {
                    var spread = pixels.var(-1, unbiased: true, keepdim: true).add_(epsilon).sqrt_();
                    prediction = prediction.mul(spread).add_(pixels.mean([-1], keepdim: true));
                }
                var hidden = fixedMask.Mask.unsqueeze(-1);
                var seen = pixels.mul(hidden.neg().add_(one));
                Write(seen.add(hidden.mul(grey)), masked);
                Write(seen.add(hidden.mul(prediction)), reconstructed);

                void Write(Tensor patches, byte[] target)
                {
                    // [N, L, P²·C] back to [N, C, H, W] (MaeLoss.Patchify's inverse), then bytes.
                    var grid = size / patch;
                    var image = patches.reshape(indices.Length, grid, grid, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
                        .reshape(indices.Length, channels, size, size).clamp(low, one).mul_(range).round_().to(ScalarType.Byte).cpu();
                    image.data<byte>().CopyTo(target, checked(start * images.ImageSize));
                }
            }
        }
        finally
        {
            mae.train(wasTraining);
        }
        ImageStore Store(byte[] bytes) => new(bytes, channels, size, images.Width, images.Labels, images.LabelNames, [.. images.Sources], []);
        return (Store(masked), Store(reconstructed));
    }

    /// <summary>Each image's mean reconstruction error over its patch positions: the uncalibrated score.</summary>
    public float[] Errors(ImageStore images) => [.. PatchErrors(images).Select(e => e.Average())];

    /// <summary>The energy (under <paramref name="calibration"/>) and the mean reconstruction error of every image, from one pass.</summary>
    public (float[] Energy, float[] Error) Score(ImageStore images, EnergyCalibration calibration)
    {
        Check(calibration);
        var errors = PatchErrors(images);
        return ([.. errors.Select(e => (float)calibration.Energy([.. e.Select(v => Math.Log(v + LogFloor))]))], [.. errors.Select(e => e.Average())]);
    }

    /// <summary>Learns the usual errors from <paramref name="reference"/>, images the user calls normal (at least 2).</summary>
    public EnergyCalibration Calibrate(ImageStore reference)
    {
        if (reference.Count < 2) throw new ArgumentException($"Calibration needs at least 2 reference images; got {reference.Count}.", nameof(reference));
        var logs = PatchErrors(reference).Select(e => e.Select(v => Math.Log(v + LogFloor)).ToArray()).ToArray();
        var mean = new double[Patches];
        var std = new double[Patches];
        for (var p = 0; p < Patches; p++)
        {
            (mean[p], var s) = MeanStd(logs.Select(l => l[p]));
            std[p] = Math.Max(s, 1e-6);
        }
        var partial = new EnergyCalibration(mean, std, 0, 1, 0, 1, reference.Count, seed, Fingerprint);
        var (zMean, zStd) = MeanStd(logs.Select(l => partial.Terms(l).MeanZ));
        var (z2Mean, z2Std) = MeanStd(logs.Select(l => partial.Terms(l).MeanSquaredZ));
        return partial with { MeanZMean = zMean, MeanZStd = Math.Max(zStd, 1e-6), MeanSquaredZMean = z2Mean, MeanSquaredZStd = Math.Max(z2Std, 1e-6) };
    }

    /// <summary>The energy of every image of <paramref name="images"/> under <paramref name="calibration"/>; about 0 ± 1.4 on images like the reference.</summary>
    public float[] Energy(ImageStore images, EnergyCalibration calibration) => Score(images, calibration).Energy;


    private static (double Mean, double Std) MeanStd(IEnumerable<double> values)
    {
        var list = values.ToArray();
        var mean = list.Average();
        return (mean, Math.Sqrt(list.Sum(v => (v - mean) * (v - mean)) / list.Length));
    }
}

/// <summary>
/// What <see cref="ReconstructionEnergy.Calibrate"/> learned from the reference images: the mean and standard deviation
/// of log(error + <see cref="ReconstructionEnergy.LogFloor"/>) at each patch position, and of the two image terms (the
/// mean z-score and the mean squared z-score) over the reference images; the mask seed and the fingerprint of the MAE's
/// weights it is valid for (<see cref="ReconstructionEnergy.Fingerprint"/>). Saved as JSON.
/// </summary>
public sealed record EnergyCalibration(double[] PatchLogMean, double[] PatchLogStd, double MeanZMean, double MeanZStd, double MeanSquaredZMean, double MeanSquaredZStd, int ReferenceImages,
    int Seed = 0, string Fingerprint = "")
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    internal (double MeanZ, double MeanSquaredZ) Terms(double[] logErrors)
    {
        double sum = 0, squares = 0;
        for (var p = 0; p < logErrors.Length; p++)
        {
            var z = (logErrors[p] - PatchLogMean[p]) / PatchLogStd[p];
            sum += z;
            squares += z * z;
        }
        return (sum / logErrors.Length, squares / logErrors.Length);
    }

    /// <summary>The energy of an image from its log-errors per position [L].</summary>
    public double Energy(double[] logErrors)
    {
        var (meanZ, meanSquaredZ) = Terms(logErrors);
        return (meanZ - MeanZMean) / MeanZStd + (meanSquaredZ - MeanSquaredZMean) / MeanSquaredZStd;
    }

    /// <summary>Writes the calibration as JSON to <paramref name="path"/>.</summary>
    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    /// <summary>Reads a calibration <see cref="Save"/> wrote; a file that is not one is refused by name.</summary>
    public static EnergyCalibration Load(string path)
    {
        EnergyCalibration? calibration;
        try
        {
            calibration = JsonSerializer.Deserialize<EnergyCalibration>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not an energy calibration: {e.Message}", e);
        }
        var statistics = calibration is { PatchLogMean.Length: > 0 } && calibration.PatchLogStd?.Length == calibration.PatchLogMean.Length;
        if (!statistics) throw new InvalidDataException($"{path} is not an energy calibration (it has no per-position statistics).");
        double[] values = [.. calibration!.PatchLogMean, .. calibration.PatchLogStd!, calibration.MeanZMean, calibration.MeanZStd, calibration.MeanSquaredZMean, calibration.MeanSquaredZStd];
        if (!values.All(double.IsFinite) || !calibration.PatchLogStd!.Append(calibration.MeanZStd).Append(calibration.MeanSquaredZStd).All(v => v > 0))
            throw new InvalidDataException($"{path} is not a usable energy calibration: its statistics must be finite and its standard deviations positive.");
        return calibration;
    }
}
