using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Selection;

/// <summary>
/// Exact cosine similarities between unit rows, a block of query rows against every database row at a time (one
/// matrix product each, through libtorch's BLAS): the reference the approximate index is measured against.
/// </summary>
internal static class ExactNeighbours
{
    /// <summary>Similarity values per block: 16 M (64 MB) at most.</summary>
    private const int BlockValues = 1 << 24;

    /// <summary>
    /// Calls <paramref name="visit"/>(first query row, rows, similarities [rows × N], row-major) for consecutive blocks of
    /// <paramref name="queries"/> ([Q, D]) against <paramref name="database"/> ([N, D]).
    /// </summary>
    public static void SimilarityBlocks(float[] database, int n, float[] queries, int q, int d, Action<int, int, float[]> visit)
    {
        if (n == 0 || q == 0) return;
        var rows = Math.Clamp(BlockValues / n, 1, q);
        var buffer = new float[(long)rows * n];
        Blocks(database, n, queries, q, d, rows, (start, count, block) =>
        {
            block.data<float>().CopyTo(buffer, 0);
            visit(start, count, buffer);
        });
    }

    /// <summary>
    /// The <paramref name="k"/> most similar database rows of every query (most similar first) and their similarities,
    /// [Q · k] each; fewer than k database rows give k = N.
    /// </summary>
    public static (int[] Indices, float[] Similarities) Nearest(float[] database, int n, float[] queries, int q, int d, int k)
    {
        k = Math.Min(k, n);
        var indices = new int[q * k];
        var similarities = new float[q * k];
        var rows = Math.Clamp(BlockValues / Math.Max(1, n), 1, Math.Max(1, q));
        Blocks(database, n, queries, q, d, rows, (start, count, block) =>
        {
            var (values, positions) = block.topk(k, dim: 1);
            values.data<float>().CopyTo(similarities, start * k);
            var found = positions.data<long>();
            for (var i = 0; i < count * k; i++) indices[start * k + i] = (int)found[i];
        });
        return (indices, similarities);
    }

    /// <summary>For every row of <paramref name="values"/>, its largest similarity to the rows <paramref name="centers"/> (−∞ when there are none).</summary>
    public static float[] MaxSimilarityTo(float[] values, int n, int d, int[] centers)
    {
        if (centers.Length == 0) return Enumerable.Repeat(float.NegativeInfinity, n).ToArray();
        var (_, similarities) = Nearest(VectorMath.Gather(values, d, centers), centers.Length, values, n, d, 1);
        return similarities;
    }

    private static void Blocks(float[] database, int n, float[] queries, int q, int d, int rows, Action<int, int, Tensor> visit)
    {
        TorchRuntime.Initialize();
        using var noGrad = no_grad();
        using var all = tensor(database, [n, d]);
        using var allT = all.t();
        using var queryMatrix = ReferenceEquals(database, queries) ? all.alias() : tensor(queries, [q, d]);
        for (var start = 0; start < q; start += rows)
        {
            using var scope = NewDisposeScope();
            var count = Math.Min(rows, q - start);
            visit(start, count, queryMatrix.narrow(0, start, count).mm(allT).contiguous());
        }
    }
}
