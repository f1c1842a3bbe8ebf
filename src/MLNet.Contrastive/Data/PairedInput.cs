using Microsoft.ML;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Data;

/// <summary>
/// The second input paired with each image of an <see cref="ImageStore"/> for paired (CLIP-style) training: row i
/// belongs to image i. <see cref="TextPairs"/> holds captions, <see cref="ImagePairs"/> a second image of the same object.
/// </summary>
public abstract class PairedInput
{
    /// <summary>Number of rows; equals the image count of the store it is paired with.</summary>
    public abstract int Count { get; }

    /// <summary>"text" or "image", as the paired method records it.</summary>
    public abstract string Kind { get; }

    /// <summary>The rows at <paramref name="indices"/> as one float32 batch: [B, T] text features or [B, C, H, W] images in [0, 1].</summary>
    public abstract Tensor Batch(ReadOnlySpan<int> indices, Device? device = null);

    /// <summary>The rows at <paramref name="indices"/>, in that order.</summary>
    public abstract PairedInput Subset(IReadOnlyList<int> indices);
}

/// <summary>
/// Captions, one per image, with their features: ML.NET's text chain (<see cref="TextFeaturization"/>: NormalizeText →
/// ProduceHashedWordBags of words and word pairs into 2^bits slots), the same chain the fitted text stage scores with.
/// </summary>
public sealed class TextPairs : PairedInput
{
    private readonly float[] features;

    private TextPairs(IReadOnlyList<string> texts, float[] features, int bits)
    {
        Texts = texts;
        this.features = features;
        Bits = bits;
    }

    /// <summary>The captions.</summary>
    public IReadOnlyList<string> Texts { get; }

    /// <summary>Hash bits of the word-bag features; each caption's feature vector has 2^Bits slots.</summary>
    public int Bits { get; }

    /// <summary>T, the length of each caption's feature vector.</summary>
    public int Dimension => 1 << Bits;

    /// <inheritdoc/>
    public override int Count => Texts.Count;

    /// <inheritdoc/>
    public override string Kind => "text";

    /// <summary>Featurizes <paramref name="texts"/> (one caption per image; empty captions are refused by position).</summary>
    public static TextPairs Create(IReadOnlyList<string> texts, int bits = TextFeaturization.DefaultBits, MLContext? mlContext = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        for (var i = 0; i < texts.Count; i++)
            if (string.IsNullOrWhiteSpace(texts[i]))
                throw new ArgumentException($"Caption {i} is empty; every image needs a caption.", nameof(texts));
        return new TextPairs(texts.ToArray(), TextFeaturization.Featurize(mlContext ?? new MLContext(), texts, bits), bits);
    }

    /// <inheritdoc/>
    public override Tensor Batch(ReadOnlySpan<int> indices, Device? device = null)
    {
        var size = Dimension;
        var batch = new float[indices.Length * size];
        for (var i = 0; i < indices.Length; i++) Array.Copy(features, (long)indices[i] * size, batch, (long)i * size, size);
        return tensor(batch, [indices.Length, size], device: device ?? CPU);
    }

    /// <inheritdoc/>
    public override PairedInput Subset(IReadOnlyList<int> indices)
    {
        var size = Dimension;
        var subset = new float[indices.Count * size];
        for (var i = 0; i < indices.Count; i++) Array.Copy(features, (long)indices[i] * size, subset, (long)i * size, size);
        return new TextPairs(indices.Select(i => Texts[i]).ToArray(), subset, Bits);
    }
}

/// <summary>A second image of each object (another camera, another modality), decoded into its own store.</summary>
public sealed class ImagePairs : PairedInput
{
    /// <summary>Pairs each image with the image of the same row of <paramref name="images"/>.</summary>
    public ImagePairs(ImageStore images) => Images = images ?? throw new ArgumentNullException(nameof(images));

    /// <summary>The second images.</summary>
    public ImageStore Images { get; }

    /// <inheritdoc/>
    public override int Count => Images.Count;

    /// <inheritdoc/>
    public override string Kind => "image";

    /// <inheritdoc/>
    public override Tensor Batch(ReadOnlySpan<int> indices, Device? device = null) => Images.Batch(indices, device);

    /// <inheritdoc/>
    public override PairedInput Subset(IReadOnlyList<int> indices) => new ImagePairs(Images.Subset(indices));
}
