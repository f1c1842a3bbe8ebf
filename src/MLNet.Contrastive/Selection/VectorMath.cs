using System.Numerics;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Selection;

/// <summary>Row arithmetic on L2-normalised embeddings, where ‖a − b‖² = 2 − 2 a·b.</summary>
internal static class VectorMath
{
    /// <summary>A copy of the rows scaled to unit length (an all-zero row stays zero).</summary>
    public static float[] Normalized(Embeddings embeddings)
    {
        var values = (float[])embeddings.Values.Clone();
        NormalizeRows(values, embeddings.Dimension);
        return values;
    }

    /// <summary>Scales each row of <paramref name="dimension"/> values in place to unit length (an all-zero row stays zero).</summary>
    public static void NormalizeRows(Span<float> values, int dimension)
    {
        if (dimension <= 0) return;
        for (var start = 0; start + dimension <= values.Length; start += dimension)
        {
            var row = values.Slice(start, dimension);
            var norm = MathF.Sqrt(Dot(row, row));
            if (norm > 0) foreach (ref var v in row) v /= norm;
        }
    }

    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = Vector<float>.Zero;
        var i = 0;
        for (; i <= a.Length - Vector<float>.Count; i += Vector<float>.Count)
            sum += new Vector<float>(a[i..]) * new Vector<float>(b[i..]);
        var total = Vector.Sum(sum);
        for (; i < a.Length; i++) total += a[i] * b[i];
        return total;
    }

    /// <summary>The squared Euclidean distance between two unit rows of cosine similarity <paramref name="similarity"/>.</summary>
    public static float SquaredDistance(float similarity) => Math.Max(0f, 2f - 2f * similarity);

    /// <summary>The Euclidean distance between two unit rows of cosine similarity <paramref name="similarity"/>.</summary>
    public static float Distance(float similarity) => MathF.Sqrt(SquaredDistance(similarity));

    /// <summary>The cosine similarity at which unit rows are <paramref name="distance"/> apart.</summary>
    public static float SimilarityAt(double distance) => (float)(1 - distance * distance / 2);

    /// <summary>Rows <paramref name="rows"/> of <paramref name="values"/> ([N, D]) gathered into a new [rows, D] array.</summary>
    public static float[] Gather(float[] values, int dimension, IReadOnlyList<int> rows)
    {
        var result = new float[rows.Count * dimension];
        for (var i = 0; i < rows.Count; i++) values.AsSpan(rows[i] * dimension, dimension).CopyTo(result.AsSpan(i * dimension));
        return result;
    }
}
