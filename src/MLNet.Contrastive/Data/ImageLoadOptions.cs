namespace MLNet.Contrastive.Data;

/// <summary>How images are decoded and sized when they are read into an <see cref="ImageStore"/>.</summary>
public sealed class ImageLoadOptions
{
    /// <summary>The largest height or width images can be resized to: the store holds every image at that size.</summary>
    public const int MaxSide = 1024;

    /// <summary>Height every image is resized to, at most <see cref="MaxSide"/>. Default 28.</summary>
    public int Height { get; set; } = 28;

    /// <summary>Width every image is resized to, at most <see cref="MaxSide"/>. Default 28.</summary>
    public int Width { get; set; } = 28;

    /// <summary>1 (grayscale) or 3 (RGB); images of the other kind are converted. Default 1.</summary>
    public int Channels { get; set; } = 1;

    /// <summary>
    /// Largest width × height an image header may declare; larger images are rejected before they are decoded
    /// (a decompression bomb decodes a few kilobytes into gigabytes). Default 50,000,000 (e.g. 7071 × 7071).
    /// </summary>
    public long MaxPixels { get; set; } = 50_000_000;

    /// <summary>Skip unreadable images (counted in <see cref="ImageStore.Skipped"/>) instead of failing. Default false.</summary>
    public bool SkipBadImages { get; set; }

    /// <summary>
    /// A folder for decoded-image caches: <see cref="ImageStore.Load"/> writes the resized images there once (one file per
    /// source and size) and reads batches from that file on every later load — no decoding, and memory that stays flat
    /// however large the dataset. A cache is rebuilt when a source file's size or time, or these options, change. Default null (no cache).
    /// </summary>
    public string? CacheFolder { get; set; }

    internal void Validate()
    {
        if (Height <= 0 || Width <= 0) throw new ArgumentOutOfRangeException(nameof(Height), $"The image size must be positive; got {Height}×{Width}.");
        if (Height > MaxSide || Width > MaxSide)
            throw new ArgumentOutOfRangeException(nameof(Height), $"The image size {Height}×{Width} is above {MaxSide}×{MaxSide}: every image is stored decoded at that size, so memory would run out first.");
        if (Channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(Channels), Channels, "Channels must be 1 (grayscale) or 3 (RGB).");
        if (MaxPixels <= 0) throw new ArgumentOutOfRangeException(nameof(MaxPixels), MaxPixels, "The pixel limit must be positive.");
    }
}
