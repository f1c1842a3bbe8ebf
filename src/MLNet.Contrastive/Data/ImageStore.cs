using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Data;

/// <summary>
/// Images decoded once into one compact uint8 array of shape [N, C, H, W] (planar, 0–255), with optional
/// labels; training reads batches from it every epoch without touching the files again. The array is in memory, or
/// in a cache file read image by image (<see cref="ImageLoadOptions.CacheFolder"/>) for datasets larger than memory.
/// </summary>
public sealed class ImageStore
{
    private readonly PixelStorage pixels;

    internal ImageStore(byte[] pixels, int channels, int height, int width, int[]? labels,
        IReadOnlyList<string>? labelNames, IReadOnlyList<string> sources, IReadOnlyList<string> skipped, PairedInput? pairs = null)
        : this(new ArrayPixels(pixels), channels, height, width, labels, labelNames, sources, skipped, pairs)
    {
    }

    internal ImageStore(PixelStorage pixels, int channels, int height, int width, int[]? labels,
        IReadOnlyList<string>? labelNames, IReadOnlyList<string> sources, IReadOnlyList<string> skipped, PairedInput? pairs = null,
        string? cacheFile = null)
    {
        this.pixels = pixels;
        CacheFile = cacheFile;
        Channels = channels;
        Height = height;
        Width = width;
        Labels = labels;
        LabelNames = labelNames;
        Sources = sources;
        Skipped = skipped;
        Pairs = pairs;
    }

    /// <summary>A copy of <paramref name="source"/> over <paramref name="pixels"/> (its own when null): the With… methods set what changes.</summary>
    private ImageStore(ImageStore source, PixelStorage? pixels = null)
        : this(pixels ?? source.pixels, source.Channels, source.Height, source.Width, source.Labels, source.LabelNames, source.Sources, source.Skipped,
            source.Pairs, source.CacheFile)
    {
        LabelProbabilities = source.LabelProbabilities;
    }

    /// <summary>Image <paramref name="index"/>'s pixels, [C, H, W] row-major.</summary>
    public ReadOnlySpan<byte> Image(int index) => Images(index, 1);

    /// <summary>The pixels of <paramref name="count"/> images from <paramref name="start"/>, [count, C, H, W] row-major (at most 2 GiB at a time).</summary>
    public ReadOnlySpan<byte> Images(int start, int count)
    {
        if (start < 0 || count < 0 || start > Count || count > Count - start)
            throw new ArgumentOutOfRangeException(nameof(start), $"{count} images from image {start} are outside the store's {Count}.");
        return pixels.Read((long)start * ImageSize, checked(count * ImageSize));
    }

    /// <summary>The cache file the pixels are read from; null when they are in memory.</summary>
    public string? CacheFile { get; }

    /// <summary>Whether the load found its cache already written and decoded nothing.</summary>
    public bool ReadFromCache { get; internal set; }
    /// <summary>Channels per image: 1 (grayscale) or 3 (RGB).</summary>
    public int Channels { get; }
    /// <summary>Image height in pixels.</summary>
    public int Height { get; }
    /// <summary>Image width in pixels.</summary>
    public int Width { get; }
    /// <summary>Number of images.</summary>
    public int Count => Sources.Count;
    /// <summary>Values per image, C·H·W.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>Class index per image into <see cref="LabelNames"/>; null when unlabeled.</summary>
    public int[]? Labels { get; private init; }

    /// <summary>Class names; index i names class i.</summary>
    public IReadOnlyList<string>? LabelNames { get; private init; }

    /// <summary>Where each image came from: a file path, or "file#index" for IDX and data views.</summary>
    public IReadOnlyList<string> Sources { get; private init; }

    /// <summary>One message per image skipped under <see cref="ImageLoadOptions.SkipBadImages"/>.</summary>
    public IReadOnlyList<string> Skipped { get; }

    /// <summary>The caption or second image of each image, for paired (CLIP-style) training; null when unpaired.</summary>
    public PairedInput? Pairs { get; private init; }

    /// <summary>
    /// A float32 batch of shape [B, C, H, W] with values in [0, 1] for the given image indices.
    /// </summary>
    public Tensor Batch(ReadOnlySpan<int> indices, Device? device = null)
    {
        var size = ImageSize;
        var buffer = new byte[indices.Length * size];
        for (var i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"Image {indices[i]} is outside the store's {Count}.");
            pixels.CopyTo((long)indices[i] * size, buffer.AsSpan(i * size, size));
        }
        using var bytes = tensor(buffer, new long[] { indices.Length, Channels, Height, Width });
        // The Scalar is held in a local so that it outlives the native call that reads it (see CollectionPause).
        using var range = 255f.ToScalar();
        return bytes.to(ScalarType.Float32, device ?? CPU).div_(range);
    }

    /// <summary>
    /// A teacher's class probabilities per image, [N, K] row-major (distillation's soft labels; <see cref="Labels"/> holds
    /// their most likely classes); null when the labels are hard.
    /// </summary>
    public float[]? LabelProbabilities { get; private init; }

    /// <summary>
    /// The labels of the given images: class indices [B] (int64), or with <see cref="LabelProbabilities"/> class
    /// probabilities [B, K] (float32); the store must be labelled.
    /// </summary>
    public Tensor BatchLabels(ReadOnlySpan<int> indices, Device? device = null)
    {
        var labels = Labels ?? throw new InvalidOperationException("The images have no labels.");
        if (LabelProbabilities is { } probabilities)
        {
            var classes = probabilities.Length / Count;
            var rows = new float[indices.Length * classes];
            for (var i = 0; i < indices.Length; i++) Array.Copy(probabilities, (long)indices[i] * classes, rows, (long)i * classes, classes);
            return tensor(rows, [indices.Length, classes], device: device ?? CPU);
        }
        var batch = new long[indices.Length];
        for (var i = 0; i < indices.Length; i++) batch[i] = labels[indices[i]];
        return tensor(batch, device: device ?? CPU);
    }

    /// <summary>The images at <paramref name="indices"/>, in that order (repeats allowed), as a new store that shares these pixels.</summary>
    public ImageStore Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        foreach (var i in indices)
            if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"Image {i} is outside the store's {Count}.");
        return new ImageStore(this, new RowPixels(pixels, indices, ImageSize))
        {
            Labels = Labels is null ? null : indices.Select(i => Labels[i]).ToArray(),
            Sources = indices.Select(i => Sources[i]).ToArray(),
            Pairs = Pairs?.Subset(indices),
            LabelProbabilities = LabelProbabilities is { } p ? indices.SelectMany(i => p.AsSpan(i * (p.Length / Count), p.Length / Count).ToArray()).ToArray() : null,
        };
    }

    /// <summary>Image <paramref name="index"/> as interleaved B, G, R, A bytes (gray repeated in B, G and R; A = 255), [H, W, 4].</summary>
    internal byte[] Bgra(int index)
    {
        var plane = Height * Width;
        var image = Image(index);
        var bgra = new byte[plane * 4];
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < 3; c++) bgra[4 * p + 2 - c] = image[(Channels == 1 ? 0 : c * plane) + p];
            bgra[4 * p + 3] = 255;
        }
        return bgra;
    }

    /// <summary>The same images with other labels (one class index per image into <paramref name="labelNames"/>).</summary>
    public ImageStore WithLabels(int[] labels, IReadOnlyList<string>? labelNames)
    {
        if (labels.Length != Count) throw new ArgumentException($"Expected {Count} labels, got {labels.Length}.", nameof(labels));
        return new ImageStore(this) { Labels = labels, LabelNames = labelNames, LabelProbabilities = null };
    }

    /// <summary>The same images, labelled only at <paramref name="rows"/>: the others' labels become −1 (unlabelled images, for distillation).</summary>
    public ImageStore KeepLabelsOf(IEnumerable<int> rows)
    {
        var labels = Labels ?? throw new InvalidOperationException("The images have no labels.");
        var kept = Enumerable.Repeat(-1, Count).ToArray();
        foreach (var row in rows) kept[row] = labels[row];
        return WithLabels(kept, LabelNames);
    }

    /// <summary>
    /// The same images with soft labels: class probabilities [N, K] row-major (e.g. a teacher's predictions to distil);
    /// <see cref="Labels"/> become each row's most likely class.
    /// </summary>
    public ImageStore WithLabelProbabilities(float[] probabilities, IReadOnlyList<string>? labelNames)
    {
        ArgumentNullException.ThrowIfNull(probabilities);
        if (Count == 0 || probabilities.Length % Count != 0 || probabilities.Length / Count < 2)
            throw new ArgumentException($"Expected [{Count:N0}, K ≥ 2] class probabilities, got {probabilities.Length:N0} values.", nameof(probabilities));
        var classes = probabilities.Length / Count;
        var labels = new int[Count];
        for (var i = 0; i < Count; i++)
        {
            double sum = 0;
            for (var k = 0; k < classes; k++)
            {
                var p = probabilities[(long)i * classes + k];
                if (!(p is >= 0 and <= 1))
                    throw new ArgumentException($"Row {i} of the class probabilities holds {p}, outside [0, 1].", nameof(probabilities));
                sum += p;
                if (p > probabilities[(long)i * classes + labels[i]]) labels[i] = k;
            }
            if (Math.Abs(sum - 1) > 1e-3)
                throw new ArgumentException($"Row {i} of the class probabilities sums to {sum:G4}, not 1.", nameof(probabilities));
        }
        return new ImageStore(this) { Labels = labels, LabelNames = labelNames, LabelProbabilities = probabilities };
    }

    /// <summary>The same images, each paired with the row of <paramref name="pairs"/> at its index (a caption or a second image).</summary>
    public ImageStore WithPairs(PairedInput pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count != Count)
            throw new ArgumentException($"Expected one paired {pairs.Kind} per image ({Count:N0}), got {pairs.Count:N0}.", nameof(pairs));
        return new ImageStore(this) { Pairs = pairs };
    }

    /// <summary>
    /// Reads an image folder (<c>root/&lt;label&gt;/*.png|jpg|jpeg|bmp</c>, or flat and unlabeled) or an IDX file
    /// (raw or .gz, with an optional IDX labels file). With <see cref="ImageLoadOptions.CacheFolder"/>, the decoded images
    /// are written there once and read from that file by every later load of the same files at the same size.
    /// </summary>
    public static ImageStore Load(string path, string? labelsPath = null, ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        options.Validate();
        ImageSource source;
        if (Directory.Exists(path))
        {
            if (labelsPath is not null) throw new ArgumentException("A labels file goes with IDX images; an image folder takes its labels from sub-folder names.", nameof(labelsPath));
            source = ImageFolderReader.Source(path, options);
        }
        else if (File.Exists(path)) source = IdxReader.Source(path, labelsPath);
        else throw new ImageDataException(path, "no such file or folder.");
        return options.CacheFolder is { } folder ? ImageCache.Load(folder, source, options) : ImageDecoding.Decode(source.Open(), options);
    }

    /// <summary>
    /// Decodes a list of image files (PNG, JPEG, BMP), with a class name for each when <paramref name="labels"/> is given,
    /// in the order given; an unreadable file fails with its problem, or is skipped and listed in <see cref="Skipped"/>
    /// under <see cref="ImageLoadOptions.SkipBadImages"/>.
    /// </summary>
    public static ImageStore FromFiles(IReadOnlyList<string> paths, IReadOnlyList<string>? labels = null, ImageLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (labels is not null && labels.Count != paths.Count)
            throw new ArgumentException($"Expected one label per image ({paths.Count:N0}), got {labels.Count:N0}.", nameof(labels));
        options ??= new ImageLoadOptions();
        options.Validate();
        return ImageDecoding.FromFiles(paths, labels, options);
    }

    /// <summary>
    /// Reads an <see cref="IDataView"/> whose <paramref name="imageColumnName"/> holds images (MLImage) or
    /// image file paths (text); <paramref name="labelColumnName"/>, when given, is read as text class names.
    /// </summary>
    public static ImageStore FromDataView(MLContext mlContext, IDataView data, string imageColumnName,
        string? labelColumnName = null, ImageLoadOptions? options = null) =>
        DataViewReader.Read(mlContext, data, imageColumnName, labelColumnName, options ?? new ImageLoadOptions());
}
