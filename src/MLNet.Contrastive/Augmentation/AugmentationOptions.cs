namespace MLNet.Contrastive.Augmentation;

/// <summary>
/// The random view recipe. Each augmentation is drawn independently per sample; probabilities of 0 turn one off.
/// Start from <see cref="SmallImages"/> (≤ 64 px) or <see cref="LargeImages"/> and override what you need.
/// </summary>
public sealed class AugmentationOptions
{
    /// <summary>Random resized crop: range of the crop's area as a fraction of the image. Default 0.08–1 (large), 0.25–1 (small).</summary>
    public double CropScaleMin { get; set; } = 0.08;
    /// <summary>Upper end of the crop's area fraction (see <see cref="CropScaleMin"/>).</summary>
    public double CropScaleMax { get; set; } = 1.0;

    /// <summary>Side of the (square) views in pixels; null keeps the image's size. Multi-crop's small crops set it (e.g. 16 for 28-px images). Default null.</summary>
    public int? OutputSize { get; set; }

    /// <summary>Random resized crop: range of the crop's aspect ratio (width / height). Default 3/4–4/3.</summary>
    public double CropRatioMin { get; set; } = 3.0 / 4.0;
    /// <summary>Upper end of the crop's aspect ratio (see <see cref="CropRatioMin"/>).</summary>
    public double CropRatioMax { get; set; } = 4.0 / 3.0;

    /// <summary>Probability of a horizontal flip. Default 0.5.</summary>
    public double FlipProbability { get; set; } = 0.5;

    /// <summary>Probability that colour jitter is applied to a sample. Default 0.8.</summary>
    public double ColorJitterProbability { get; set; } = 0.8;

    /// <summary>Colour jitter strengths: factors drawn from [1 − s, 1 + s]; hue shift from [−h, h] turns. Defaults 0.4, 0.4, 0.2, 0.1.</summary>
    public double Brightness { get; set; } = 0.4;
    /// <summary>Contrast jitter strength (see <see cref="Brightness"/>).</summary>
    public double Contrast { get; set; } = 0.4;
    /// <summary>Saturation jitter strength, RGB only (see <see cref="Brightness"/>).</summary>
    public double Saturation { get; set; } = 0.2;
    /// <summary>Hue jitter: shift drawn from [−h, h] turns, RGB only (see <see cref="Brightness"/>).</summary>
    public double Hue { get; set; } = 0.1;

    /// <summary>Probability of converting an RGB sample to grayscale. Default 0.2.</summary>
    public double GrayscaleProbability { get; set; } = 0.2;

    /// <summary>Probability of a Gaussian blur, with σ drawn from [<see cref="BlurSigmaMin"/>, <see cref="BlurSigmaMax"/>] pixels. Default 0.5 (large), 0 (small).</summary>
    public double BlurProbability { get; set; } = 0.5;
    /// <summary>Smallest blur σ in pixels. Default 0.1.</summary>
    public double BlurSigmaMin { get; set; } = 0.1;
    /// <summary>Largest blur σ in pixels. Default 2.</summary>
    public double BlurSigmaMax { get; set; } = 2.0;

    /// <summary>Probability of additive Gaussian noise of standard deviation <see cref="NoiseStd"/> (pixel values in [0, 1]). Default 0 (large), 0.5 (small).</summary>
    public double NoiseProbability { get; set; }
    /// <summary>Standard deviation of the additive noise (pixel values in [0, 1]). Default 0.05.</summary>
    public double NoiseStd { get; set; } = 0.05;

    /// <summary>Probability of solarizing (inverting pixels at or above <see cref="SolarizeThreshold"/>). Default 0.</summary>
    public double SolarizeProbability { get; set; }
    /// <summary>Pixels at or above this value (in [0, 1]) are inverted by solarization. Default 0.5.</summary>
    public double SolarizeThreshold { get; set; } = 0.5;

    /// <summary>A copy, for recipes derived from this one (e.g. BYOL's asymmetric pair).</summary>
    public AugmentationOptions Clone() => (AugmentationOptions)MemberwiseClone();

    /// <summary>
    /// This recipe's crop and flip only, its crop's lower area bound lowered to <paramref name="cropScaleMin"/> (at most the
    /// upper bound), no colour or pixel changes: the masked-image methods' augmentation (MAE, I-JEPA).
    /// </summary>
    public AugmentationOptions CropAndFlipOnly(double cropScaleMin)
    {
        var recipe = Clone();
        recipe.CropScaleMin = Math.Min(cropScaleMin, recipe.CropScaleMax);
        (recipe.ColorJitterProbability, recipe.GrayscaleProbability, recipe.BlurProbability, recipe.NoiseProbability, recipe.SolarizeProbability) = (0, 0, 0, 0, 0);
        return recipe;
    }

    /// <summary>SimCLR's ImageNet recipe (lightly's SimCLRTransform): crop 0.08–1, flip, jitter 0.8, grayscale 0.2, blur 0.5.</summary>
    public static AugmentationOptions LargeImages() => new();

    /// <summary>
    /// For images of 64 px or less (CIFAR, MNIST-like): gentler crops (0.25–1) since a 28 px crop of 8% area keeps
    /// almost nothing, no blur (SimCLR drops it for CIFAR), and Gaussian noise instead.
    /// </summary>
    public static AugmentationOptions SmallImages() => new()
    {
        CropScaleMin = 0.25,
        BlurProbability = 0,
        NoiseProbability = 0.5,
    };

    /// <summary>Light views for methods that must not see colour changes (RotNet) and for supervised training: crop 0.6–1 and flip only.</summary>
    public static AugmentationOptions CropAndFlip() => new()
    {
        CropScaleMin = 0.6, ColorJitterProbability = 0, GrayscaleProbability = 0, BlurProbability = 0,
    };

    /// <summary><see cref="SmallImages"/> for sides of 64 px or less, else <see cref="LargeImages"/>.</summary>
    public static AugmentationOptions ForImageSize(int height, int width) =>
        Math.Max(height, width) <= 64 ? SmallImages() : LargeImages();

    internal void Validate()
    {
        static void Probability(double p, string name)
        {
            if (p is < 0 or > 1 || double.IsNaN(p)) throw new ArgumentOutOfRangeException(name, p, "A probability must be in [0, 1].");
        }
        Probability(FlipProbability, nameof(FlipProbability));
        Probability(ColorJitterProbability, nameof(ColorJitterProbability));
        Probability(GrayscaleProbability, nameof(GrayscaleProbability));
        Probability(BlurProbability, nameof(BlurProbability));
        Probability(NoiseProbability, nameof(NoiseProbability));
        Probability(SolarizeProbability, nameof(SolarizeProbability));
        if (CropScaleMin <= 0 || CropScaleMin > CropScaleMax || CropScaleMax > 1)
            throw new ArgumentOutOfRangeException(nameof(CropScaleMin), $"The crop scale range must satisfy 0 < min ≤ max ≤ 1; got {CropScaleMin}–{CropScaleMax}.");
        if (OutputSize is < 1) throw new ArgumentOutOfRangeException(nameof(OutputSize), OutputSize, "The view size must be positive (or null for the image's size).");
        if (CropRatioMin <= 0 || CropRatioMin > CropRatioMax)
            throw new ArgumentOutOfRangeException(nameof(CropRatioMin), $"The crop ratio range must satisfy 0 < min ≤ max; got {CropRatioMin}–{CropRatioMax}.");
        if (BlurSigmaMin <= 0 || BlurSigmaMin > BlurSigmaMax)
            throw new ArgumentOutOfRangeException(nameof(BlurSigmaMin), $"The blur σ range must satisfy 0 < min ≤ max; got {BlurSigmaMin}–{BlurSigmaMax}.");
        if (Brightness < 0 || Contrast < 0 || Saturation < 0 || Hue is < 0 or > 0.5 || NoiseStd < 0)
            throw new ArgumentOutOfRangeException(nameof(Brightness), "Jitter strengths and the noise σ must be non-negative, and the hue shift at most 0.5.");
    }
}
