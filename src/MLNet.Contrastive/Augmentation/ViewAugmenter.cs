using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Augmentation;

/// <summary>
/// Makes random views of a batch on tensors, every draw per sample from the given seeded
/// <see cref="Generator"/> (unlike batch transforms that apply one draw to the whole batch); over data-parallel ranks,
/// each rank's draws are its slice of one process's (<see cref="SampleDraws"/>).
/// Input and output: [B, C, H, W] of one floating type (float32 in training), values in [0, 1], C = 1 or 3.
/// </summary>
public sealed class ViewAugmenter
{
    private readonly AugmentationOptions options;

    /// <summary>An augmenter drawing every sample's transform from <paramref name="options"/>.</summary>
    public ViewAugmenter(AugmentationOptions options)
    {
        options.Validate();
        this.options = options;
    }

    /// <summary>The augmentation settings.</summary>
    public AugmentationOptions Options => options;

    /// <summary>
    /// One random view of each image of <paramref name="images"/> [B, C, H, W]: crop and flip, then with
    /// <see cref="AugmentationOptions.ColorJitterProbability"/> brightness, contrast and (RGB) saturation and hue, each
    /// factor drawn per sample; grayscale, blur, noise and solarization.
    /// </summary>
    public Tensor Augment(Tensor images, Generator generator)
    {
        var b = images.shape[0];
        var x = Stage(images, x => CropAndFlip(x, generator), ownsInput: false);
        if (options.ColorJitterProbability > 0)
        {
            var apply = Chance(b, options.ColorJitterProbability, generator).to_type(ScalarType.Float32);
            Tensor Factor(double strength, Tensor like) => (1 + (Uniform(b, -strength, strength, generator) * apply)).view(-1, 1, 1, 1).to(like.device);
            x = Stage(x, x => x.mul(Factor(options.Brightness, x)).clamp_(0, 1));
            x = Stage(x, x =>
            {
                var mean = Gray(x).mean(new long[] { 1, 2, 3 }, keepdim: true);
                return x.sub(mean).mul_(Factor(options.Contrast, x)).add_(mean).clamp_(0, 1);
            });
            if (x.shape[1] == 3)
            {
                x = Stage(x, x =>
                {
                    var gray = Gray(x);
                    return x.sub(gray).mul_(Factor(options.Saturation, x)).add_(gray).clamp_(0, 1);
                });
                x = Stage(x, x => HueShift(x, (Uniform(b, -options.Hue, options.Hue, generator) * apply).to(x.device)).clamp_(0, 1));
            }
            apply.Dispose();
        }
        if (x.shape[1] == 3 && options.GrayscaleProbability > 0)
            x = Stage(x, x => where(Chance(b, options.GrayscaleProbability, generator).view(-1, 1, 1, 1).to(x.device), Gray(x).expand_as(x), x));
        if (options.BlurProbability > 0) x = Stage(x, x => Blur(x, generator));
        if (options.NoiseProbability > 0)
            x = Stage(x, x => (x + SampleDraws.Randn(x.shape, generator).to(x.device) * options.NoiseStd * Chance(b, options.NoiseProbability, generator).view(-1, 1, 1, 1).to(x.device)).clamp_(0, 1));
        if (options.SolarizeProbability > 0)
            x = Stage(x, x => where(Chance(b, options.SolarizeProbability, generator).view(-1, 1, 1, 1).to(x.device) & (x >= options.SolarizeThreshold), 1 - x, x));
        return x;
    }

    /// <summary>
    /// One step of the recipe in its own dispose scope, freeing its temporaries and its input (unless that is the
    /// caller's) when it ends: at 96 px a batch's view is 57 MB and the recipe makes about 30 temporaries of that size,
    /// which one scope for the whole view would hold until the end. The result lands in the caller's scope.
    /// </summary>
    private static Tensor Stage(Tensor x, Func<Tensor, Tensor> step, bool ownsInput = true)
    {
        Tensor result;
        using (NewDisposeScope()) result = step(x).MoveToOuterDisposeScope();
        if (ownsInput && !ReferenceEquals(result, x)) x.Dispose();
        return result;
    }

    /// <summary>Random resized crop and horizontal flip as one affine resampling (bilinear), per sample, to <see cref="AugmentationOptions.OutputSize"/>.</summary>
    private Tensor CropAndFlip(Tensor x, Generator g)
    {
        var b = x.shape[0];
        var area = Uniform(b, options.CropScaleMin, options.CropScaleMax, g);
        var logRatio = Uniform(b, Math.Log(options.CropRatioMin), Math.Log(options.CropRatioMax), g);
        var ratio = logRatio.exp();
        // Crop width and height as fractions of the image side; a crop that would overflow is clipped to the image.
        var w = (area * ratio).sqrt().clamp_max(1);
        var h = (area / ratio).sqrt().clamp_max(1);
        // Centres in normalised coordinates [-1, 1], so that the crop stays inside the image.
        var cx = (Uniform(b, -1, 1, g) * (1 - w));
        var cy = (Uniform(b, -1, 1, g) * (1 - h));
        var flip = 1 - 2 * Chance(b, options.FlipProbability, g).to_type(ScalarType.Float32);
        var zeros = torch.zeros(b);
        var theta = stack(new[] { w * flip, zeros, cx, zeros, h, cy }, dim: 1).view(b, 2, 3).to_type(x.dtype).to(x.device);
        var size = options.OutputSize is { } side ? new[] { b, x.shape[1], side, side } : x.shape;
        var grid = F.affine_grid(theta, size, align_corners: false);
        return F.grid_sample(x, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false);
    }

    /// <summary>Rotates chroma in YIQ space by the given fraction of a turn per sample.</summary>
    private static Tensor HueShift(Tensor x, Tensor turns)
    {
        var toYiq = tensor(new float[] { 0.299f, 0.587f, 0.114f, 0.596f, -0.274f, -0.322f, 0.211f, -0.523f, 0.312f }).view(3, 3).to_type(x.dtype).to(x.device);
        var fromYiq = linalg.inv(toYiq);
        var yiq = einsum("ij,bjhw->bihw", toYiq, x);
        var angle = (turns * (2 * Math.PI)).view(-1, 1, 1, 1);
        var (cos, sin) = (angle.cos(), angle.sin());
        var i = yiq[.., 1..2] * cos - yiq[.., 2..3] * sin;
        var q = yiq[.., 1..2] * sin + yiq[.., 2..3] * cos;
        return einsum("ij,bjhw->bihw", fromYiq, cat(new[] { yiq[.., 0..1], i, q }, 1));
    }

    /// <summary>Separable Gaussian blur with σ drawn per sample; samples not chosen get an identity kernel.</summary>
    private Tensor Blur(Tensor x, Generator g)
    {
        long b = x.shape[0], c = x.shape[1], height = x.shape[2], width = x.shape[3];
        var radius = (int)Math.Min(Math.Ceiling(2 * options.BlurSigmaMax), (Math.Min(height, width) - 1) / 2);
        if (radius < 1) return x;
        var sigma = Uniform(b, options.BlurSigmaMin, options.BlurSigmaMax, g);
        var apply = Chance(b, options.BlurProbability, g);
        var offsets = arange(-radius, radius + 1, dtype: ScalarType.Float32);
        var kernel = (-(offsets.pow(2).unsqueeze(0)) / (2 * sigma.pow(2).unsqueeze(1))).exp();
        kernel /= kernel.sum(1, keepdim: true);
        var identity = (offsets == 0).to_type(ScalarType.Float32).unsqueeze(0).expand_as(kernel);
        kernel = where(apply.unsqueeze(1), kernel, identity).repeat_interleave(c, dim: 0).to_type(x.dtype).to(x.device);  // [B·C, k]
        var planes = F.pad(x.reshape(1, b * c, height, width), new long[] { radius, radius, radius, radius }, PaddingModes.Reflect);
        planes = F.conv2d(planes, kernel.view(b * c, 1, 1, -1), groups: b * c);
        planes = F.conv2d(planes, kernel.view(b * c, 1, -1, 1), groups: b * c);
        return planes.view(b, c, height, width);
    }

    /// <summary>ITU-R 601 luma, [B, 1, H, W]; the image itself when it has one channel.</summary>
    internal static Tensor Gray(Tensor x) =>
        x.shape[1] == 1 ? x : (0.299 * x[.., 0..1] + 0.587 * x[.., 1..2] + 0.114 * x[.., 2..3]);

    // Through SampleDraws: a data-parallel rank draws its slice of what one process at the whole batch would.
    private static Tensor Uniform(long n, double low, double high, Generator g) =>
        SampleDraws.Rand([n], g) * (high - low) + low;

    private static Tensor Chance(long n, double probability, Generator g) =>
        SampleDraws.Rand([n], g) < probability;
}
