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

    /// <summary>
    /// The whitened rows [N, C] (C = min(<paramref name="components"/>, D, N − 1, the components above the floor)) of
    /// <paramref name="values"/> [N, D], each of unit length; and C.
    /// </summary>
    public static (float[] Values, int Dimension) Whiten(float[] values, int n, int d, int components)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(components);
        TorchRuntime.Initialize();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // Float64 for the covariance and its eigenvectors: the small components are the ones whitening scales up.
        var x = tensor(values, [n, d]).to(ScalarType.Float64);
        var centred = x - x.mean([0], keepdim: true);
        // The covariance up to the factor 1/N, which the final normalisation removes.
        var (eigenvalues, eigenvectors) = linalg.eigh(centred.t().mm(centred));
        var lambda = eigenvalues.data<double>().ToArray();
        // eigh gives ascending eigenvalues: the top components are the last columns.
        var largest = lambda[^1];
        var kept = Enumerable.Range(0, d).Reverse().Where(j => largest > 0 && lambda[j] > RelativeFloor * largest).Take(Math.Min(components, Math.Max(1, n - 1))).ToArray();
        if (kept.Length == 0) return ((float[])values.Clone(), d);
        var scale = new double[d * kept.Length];
        var vectors = eigenvectors.data<double>().ToArray();
        for (var r = 0; r < d; r++)
            for (var c = 0; c < kept.Length; c++) scale[r * kept.Length + c] = vectors[r * d + kept[c]] / Math.Sqrt(lambda[kept[c]]);
        var projected = centred.mm(tensor(scale, [d, kept.Length])).to(ScalarType.Float32).contiguous();
        var result = projected.data<float>().ToArray();
        var dimension = kept.Length;
        for (var i = 0; i < n; i++)
        {
            var row = result.AsSpan(i * dimension, dimension);
            var norm = MathF.Sqrt(VectorMath.Dot(row, row));
            if (norm > 0) foreach (ref var v in row) v /= norm;
        }
        return (result, dimension);
    }
}
