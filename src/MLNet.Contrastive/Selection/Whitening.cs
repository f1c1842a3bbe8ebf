using MLNet.Contrastive.Runtime;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Selection;

/// <summary>
/// PCA whitening of unit rows: centred, projected onto their top principal components, each component scaled to unit
/// variance, and the result L2-normalised again. k-means on raw embeddings spends its clusters along the few directions
/// of largest variance, which a self-supervised encoder also gives to nuisances shared by every class (brightness,
/// size); after whitening every kept direction weighs the same.
/// </summary>
internal static class Whitening
{
    /// <summary>Components whose variance is below this fraction of the largest one are dropped (no direction is blown up from rounding noise).</summary>
    private const double RelativeFloor = 1e-6;

    /// <summary>Values per block of rows: 32 M (256 MB as float64).</summary>
    private const int BlockValues = 1 << 25;

    /// <summary>
    /// The whitened rows [N, C] (C = min(<paramref name="components"/>, D, N − 1, the components above the floor)) of
    /// <paramref name="values"/> [N, D], each of unit length; and C. <paramref name="blockRows"/>: rows per block (0: as
    /// many as fit in 32 M values).
    /// </summary>
    public static (float[] Values, int Dimension) Whiten(float[] values, int n, int d, int components, int blockRows = 0)
    {
        if (blockRows <= 0) blockRows = Math.Max(1, BlockValues / Math.Max(1, d));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(components);
        TorchRuntime.Initialize();
        using var noGrad = no_grad();
        // Float64 for the covariance and its eigenvectors (the small components are the ones whitening scales up), over
        // blocks of rows so that memory stays a block's whatever N is (a float64 copy of a million 768-d rows is 6 GB).
        using var sum = zeros([1, d], ScalarType.Float64);
        foreach (var (start, count) in Blocks(n, blockRows))
        {
            using var scope = NewDisposeScope();
            sum.add_(Block(values, start, count, d).sum([0], keepdim: true));
        }
        var meanValues = sum.data<double>().Select(v => v / n).ToArray();
        using var mean = tensor(meanValues, [1, d]);
        // The covariance up to the factor 1/N, which the final normalisation removes.
        using var covariance = zeros([d, d], ScalarType.Float64);
        foreach (var (start, count) in Blocks(n, blockRows))
        {
            using var scope = NewDisposeScope();
            var centred = Block(values, start, count, d) - mean;
            covariance.add_(centred.t().mm(centred));
        }
        var (eigenvalues, eigenvectors) = linalg.eigh(covariance);
        using var eigenvalueTensor = eigenvalues;
        using var eigenvectorTensor = eigenvectors;
        var lambda = eigenvalues.data<double>().ToArray();
        // eigh gives ascending eigenvalues: the top components are the last columns.
        var largest = lambda[^1];
        var kept = Enumerable.Range(0, d).Reverse().Where(j => largest > 0 && lambda[j] > RelativeFloor * largest).Take(Math.Min(components, Math.Max(1, n - 1))).ToArray();
        if (kept.Length == 0) return ((float[])values.Clone(), d);
        var scale = new double[d * kept.Length];
        var vectors = eigenvectors.data<double>().ToArray();
        for (var r = 0; r < d; r++)
            for (var c = 0; c < kept.Length; c++) scale[r * kept.Length + c] = vectors[r * d + kept[c]] / Math.Sqrt(lambda[kept[c]]);
        using var projection = tensor(scale, [d, kept.Length]);
        var dimension = kept.Length;
        var result = new float[(long)n * dimension];
        foreach (var (start, count) in Blocks(n, blockRows))
        {
            using var scope = NewDisposeScope();
            var projected = (Block(values, start, count, d) - mean).mm(projection).to(ScalarType.Float32).contiguous();
            projected.data<float>().CopyTo(result, start * dimension);
        }
        VectorMath.NormalizeRows(result, dimension);
        return (result, dimension);
    }

    /// <summary>Consecutive (first row, rows) blocks.</summary>
    private static IEnumerable<(int Start, int Count)> Blocks(int n, int rows)
    {
        for (var start = 0; start < n; start += rows) yield return (start, Math.Min(rows, n - start));
    }

    /// <summary>Rows start … start + count − 1 of <paramref name="values"/> as a float64 tensor [count, d].</summary>
    private static TorchSharp.torch.Tensor Block(float[] values, int start, int count, int d) =>
        tensor(values.AsSpan(start * d, count * d).ToArray(), [count, d]).to(ScalarType.Float64);
}
