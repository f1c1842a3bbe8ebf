using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace MLNet.Contrastive.Data;

/// <summary>
/// The decode pipeline behind every <see cref="ImageStore"/> load: image files decoded by <see cref="ImageDecoder"/>, in
/// parallel chunks through ML.NET's pre-processing chain (<see cref="ImagePreprocessing.Chain"/>), into planar bytes.
/// </summary>
internal static class ImageDecoding
{
    private const int ChunkSize = 1024;

    /// <summary>
    /// Decodes image files (with their class names, if any) through <see cref="ImageDecoder"/> and the pre-processing chain;
    /// unreadable files fail with their problem, or are skipped and counted under <see cref="ImageLoadOptions.SkipBadImages"/>.
    /// </summary>
    public static ImageStore FromFiles(IReadOnlyList<string> paths, IReadOnlyList<string>? labelTexts, ImageLoadOptions options)
    {
        if (paths.Count == 0) throw new ArgumentException("No image files were given (empty dataset).", nameof(paths));
        return Decode(ImagePlan.ForFiles(paths, labelTexts, options), options);
    }

    /// <summary>Decodes every image of <paramref name="plan"/> into a store in memory.</summary>
    public static ImageStore Decode(ImagePlan plan, ImageLoadOptions options)
    {
        // Sized for every image up front: a growing stream would double its buffer and copy it again at the end.
        var expected = (long)plan.Count * options.Channels * options.Height * options.Width;
        using var pixels = new MemoryStream((int)Math.Min(expected, Array.MaxLength));
        var decoded = Preprocess(plan, options, pixels, Array.MaxLength);
        var store = pixels.Length == pixels.Capacity ? pixels.GetBuffer() : pixels.ToArray();
        return new ImageStore(store, options.Channels, options.Height, options.Width, decoded.Labels, decoded.LabelNames, decoded.Sources, decoded.Skipped);
    }

    /// <summary>Class indices into the ordinally sorted distinct class names.</summary>
    public static (int[]? Labels, List<string>? Names) IndexLabels(IReadOnlyList<string>? texts)
    {
        if (texts is null) return (null, null);
        var names = texts.Distinct().Order(StringComparer.Ordinal).ToList();
        var indexOf = names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i);
        return (texts.Select(t => indexOf[t]).ToArray(), names);
    }

    /// <summary>
    /// Decodes the images of <paramref name="plan"/> and runs them through <see cref="ImagePreprocessing.Chain"/> in
    /// chunks of 1,024, as many chunks at a time as there are processors, writing their pixels [N, C, H, W] to
    /// <paramref name="output"/> in order (each image is disposed once its pixels are copied); at most
    /// <paramref name="maxBytes"/> bytes. Returns what the store needs besides the pixels.
    /// </summary>
    public static DecodedImages Preprocess(ImagePlan plan, ImageLoadOptions options, Stream output, long maxBytes)
    {
        var imageSize = (long)options.Channels * options.Height * options.Width;
        var kept = new List<int>(plan.Count);
        var skipped = new List<string>();
        using var chains = new ThreadLocal<(MLContext Context, ITransformer? Chain)>(() => (new MLContext(), null), trackAllValues: false);
        var chunks = Enumerable.Range(0, (plan.Count + ChunkSize - 1) / ChunkSize)
            .AsParallel().AsOrdered().WithDegreeOfParallelism(Environment.ProcessorCount).WithMergeOptions(ParallelMergeOptions.NotBuffered)
            .Select(c => PreprocessChunk(plan, c * ChunkSize, Math.Min(ChunkSize, plan.Count - c * ChunkSize), options, chains));
        long written = 0;
        try
        {
            foreach (var chunk in chunks)
            {
                if (written + chunk.Pixels.Length > maxBytes)
                    throw new ArgumentException(
                        $"{written / imageSize + chunk.Kept.Count:N0} images of {options.Channels}×{options.Height}×{options.Width} do not fit in one store in memory ({maxBytes:N0} bytes); use a smaller image size, fewer images, or ImageLoadOptions.CacheFolder.");
                output.Write(chunk.Pixels);
                written += chunk.Pixels.Length;
                kept.AddRange(chunk.Kept);
                skipped.AddRange(chunk.Skipped);
            }
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            // A reader's own error (the file and its problem) rather than PLINQ's wrapper.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        if (kept.Count == 0) throw new ImageDataException(plan.FirstItem, $"none of the {plan.Count} images could be read; the first problem: {skipped[0]}");
        var (labels, names) = plan.Labels(kept);
        return new DecodedImages(kept.Count, plan.Sources(kept), labels, names, skipped);
    }

    private static (byte[] Pixels, List<int> Kept, List<string> Skipped) PreprocessChunk(ImagePlan plan, int start, int count, ImageLoadOptions options,
        ThreadLocal<(MLContext Context, ITransformer? Chain)> chains)
    {
        var images = new List<MLImage>(count);
        var kept = new List<int>(count);
        var skipped = new List<string>();
        try
        {
            for (var i = start; i < start + count; i++)
            {
                try { images.Add(plan.Decode(i)); }
                catch (ImageDataException e) when (options.SkipBadImages)
                {
                    skipped.Add(e.Message);
                    continue;
                }
                kept.Add(i);
            }
            if (images.Count == 0) return ([], kept, skipped);
            var (mlContext, chain) = chains.Value;
            var view = mlContext.Data.LoadFromEnumerable(images.Select(image => new ImageRow { Image = image }));
            if (chain is null)
            {
                chain = ImagePreprocessing.Chain(mlContext, nameof(ImageRow.Image), PixelsColumn, options.Height, options.Width,
                    options.Channels, asFloat: false, new HashSet<string> { nameof(ImageRow.Image), PixelsColumn }).Chain.Fit(view);
                chains.Value = (mlContext, chain);
            }
            using var pixels = new MemoryStream((int)Math.Min((long)images.Count * options.Channels * options.Height * options.Width, Array.MaxLength));
            CopyPixels(chain.Transform(view), pixels, PixelsColumn);
            return (pixels.Length == pixels.Capacity ? pixels.GetBuffer() : pixels.ToArray(), kept, skipped);
        }
        finally
        {
            foreach (var image in images) image.Dispose();
        }
    }

    public const string PixelsColumn = "Pixels";

    /// <summary>Appends the byte vectors of <paramref name="pixelsColumn"/> to <paramref name="output"/>, row by row.</summary>
    public static void CopyPixels(IDataView transformed, Stream output, string pixelsColumn)
    {
        var column = transformed.Schema[pixelsColumn];
        using var cursor = transformed.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<VBuffer<byte>>(column);
        var row = default(VBuffer<byte>);
        while (cursor.MoveNext())
        {
            getter(ref row);
            if (row.IsDense) output.Write(row.GetValues());
            else output.Write(row.DenseValues().ToArray());
        }
    }

    private sealed class ImageRow
    {
        [AnySizeImage]
        public MLImage? Image { get; set; }
    }

    /// <summary>
    /// Maps an MLImage member to an image column of unknown size (ML.NET's ImageType attribute insists on one
    /// size; the rows here have mixed sizes until the chain resizes them).
    /// </summary>
    [AttributeUsage(AttributeTargets.Property)]
    private sealed class AnySizeImageAttribute : DataViewTypeAttribute
    {
        public override void Register() => DataViewTypeManager.Register(new ImageDataViewType(), typeof(MLImage), this);

        public override bool Equals(DataViewTypeAttribute other) => other is AnySizeImageAttribute;

        public override bool Equals(object? obj) => obj is AnySizeImageAttribute;

        public override int GetHashCode() => typeof(AnySizeImageAttribute).GetHashCode();
    }
}
