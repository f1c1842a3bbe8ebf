using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using SkiaSharp;

namespace MLNet.Contrastive.Reporting;

/// <summary>The pictures of a representation: a 2-D PCA projection and a nearest-neighbour image grid.</summary>
public static class EmbeddingViews
{
    /// <summary>
    /// Fills the report's projection (of at most <paramref name="maxPoints"/> rows) and neighbour grid from the
    /// <paramref name="embeddings"/> of <paramref name="images"/> (same rows), described as <paramref name="what"/>;
    /// classes are named by <paramref name="labelNames"/> when given, else by the store's label names.
    /// </summary>
    public static void Describe(RunReport report, ImageStore images, Embeddings embeddings, string what,
        IReadOnlyList<string>? labelNames = null, int maxPoints = 2000)
    {
        labelNames ??= images.LabelNames;
        report.EmbeddedImages = $"{images.Count:N0} {what}";
        report.Projection = Project(embeddings, labelNames, maxPoints);
        report.Neighbours = NearestNeighbours(images, embeddings, labelNames);
    }

    /// <summary>
    /// The first <paramref name="maxPoints"/> embeddings projected on their first two principal components: exact PCA by
    /// SVD of the centred [N, D] matrix in float64, each component's sign fixed so its largest loading is positive.
    /// (ML.NET 5.0.1's randomized ProjectToPrincipalComponents returned a near-zero-variance direction as one of the two
    /// components on test data here, dotnet/machinelearning#6713, so it is not used.)
    /// </summary>
    public static List<ProjectedPoint> Project(Embeddings embeddings, IReadOnlyList<string>? labelNames, int maxPoints = 2000)
    {
        TorchRuntime.Initialize();
        var count = Math.Min(maxPoints, embeddings.Count);
        using var pause = CollectionPause.Begin();
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(embeddings.Values[..(count * embeddings.Dimension)], new long[] { count, embeddings.Dimension }).to(torch.ScalarType.Float64);
        x = x - x.mean(new long[] { 0 }, keepdim: true);
        var (_, _, vt) = torch.linalg.svd(x, fullMatrices: false);
        var components = vt[..2];                                                   // [2, D]
        var largest = components.abs().argmax(1, keepdim: true);
        components = components * components.gather(1, largest).sign();
        var xy = x.mm(components.t()).to(torch.ScalarType.Float32).data<float>().ToArray();
        return Enumerable.Range(0, count).Select(i => new ProjectedPoint(xy[2 * i], xy[2 * i + 1], LabelOf(embeddings, i, labelNames))).ToList();
    }

    /// <summary>
    /// <paramref name="queries"/> images spread over the data, each with its <paramref name="neighbours"/> nearest other
    /// images by cosine similarity of <paramref name="embeddings"/> (rows of <paramref name="images"/>, same order).
    /// </summary>
    public static List<NeighbourRow> NearestNeighbours(ImageStore images, Embeddings embeddings, IReadOnlyList<string>? labelNames = null,
        int queries = 8, int neighbours = 8)
    {
        if (images.Count != embeddings.Count) throw new ArgumentException($"{images.Count} images but {embeddings.Count} embeddings.");
        var normalized = Selection.VectorMath.Normalized(embeddings);
        var d = embeddings.Dimension;
        var step = Math.Max(1, embeddings.Count / queries);
        LabeledImage Image(int index) => new(LabelOf(embeddings, index, labelNames ?? images.LabelNames), PngDataUri(images, index));
        return Enumerable.Range(0, Math.Min(queries, embeddings.Count)).Select(q => q * step).Select(query =>
        {
            var nearest = Enumerable.Range(0, embeddings.Count).Where(i => i != query)
                .OrderByDescending(i => Selection.VectorMath.Dot(normalized.AsSpan(query * d, d), normalized.AsSpan(i * d, d))).Take(neighbours);
            return new NeighbourRow(Image(query), nearest.Select(Image).ToList());
        }).ToList();
    }

    private static string LabelOf(Embeddings embeddings, int index, IReadOnlyList<string>? names) =>
        embeddings.Labels is { } labels ? names?[labels[index]] ?? labels[index].ToString(System.Globalization.CultureInfo.InvariantCulture) : "";

    /// <summary>One image of the store as a PNG data URI (grayscale or RGB).</summary>
    internal static string PngDataUri(ImageStore images, int index)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(images.Width, images.Height, SKColorType.Bgra8888, SKAlphaType.Opaque));
        var pixels = images.Bgra(index);
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var png = SKImage.FromBitmap(bitmap).Encode(SKEncodedImageFormat.Png, 100);
        return "data:image/png;base64," + Convert.ToBase64String(png.ToArray());
    }
}
