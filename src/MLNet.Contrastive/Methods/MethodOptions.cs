using System.Text.Json;
using System.Text.Json.Serialization;
using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// The settings of one self-supervised method, and the method's descriptor: each method has its own subclass
/// (<see cref="SimClrOptions"/>, <see cref="ByolOptions"/>, …) with documented defaults, registered by name in
/// <see cref="PretrainingMethods"/>. Checkpoints store it with its name, so a run is rebuilt with the same method and settings.
/// </summary>
public abstract class MethodOptions
{
    /// <summary>The method's registry name (the CLI's <c>--method</c>); the checkpoint stores it as "method".</summary>
    [JsonIgnore]
    public string Name => PretrainingMethods.NameOf(GetType());

    /// <summary>Builds the method around <paramref name="encoder"/>, the encoder that is trained and exported.</summary>
    public abstract PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first setting out of range.</summary>
    public virtual void Validate() { }

    /// <summary>A deep copy (through the checkpoint's JSON form).</summary>
    public MethodOptions Clone() =>
        JsonSerializer.Deserialize<MethodOptions>(JsonSerializer.Serialize(this, PretrainingMethods.Json), PretrainingMethods.Json)!;

    /// <summary>Throws when <paramref name="value"/> is not a finite number in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    protected static void Range(double value, double min, double max, string name)
    {
        if (!double.IsFinite(value) || value < min || value > max)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number in [{min}, {max}].");
    }

    /// <summary>Throws when <paramref name="value"/> is not positive.</summary>
    protected static void Positive(double value, string name)
    {
        if (!double.IsFinite(value) || value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be a positive finite number.");
    }
}

/// <summary>What a method is built for: the run's base view recipe, the number of classes of the data (0 when unlabeled), the seed, the paired input.</summary>
/// <param name="Views">The run's view recipe; methods derive their own recipes from it (e.g. BYOL's asymmetric pair).</param>
/// <param name="Classes">Distinct labels in the training data; 0 when it is unlabeled.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Pairs">The images' captions or second images (CLIP-style training); null when unpaired or when rebuilding from a checkpoint.</param>
/// <param name="Images">Images in the training data; 0 when rebuilding from a checkpoint.</param>
/// <param name="ImageShape">Channels, height and width of the training images; null when rebuilding from a checkpoint.</param>
public sealed record MethodSetup(AugmentationOptions Views, int Classes, int Seed, Data.PairedInput? Pairs = null, int Images = 0,
    (int Channels, int Height, int Width)? ImageShape = null);
