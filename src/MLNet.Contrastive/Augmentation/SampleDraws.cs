using static TorchSharp.torch;

namespace MLNet.Contrastive.Augmentation;

/// <summary>
/// Per-sample random draws (views, masks) that do not depend on how a batch is split over data-parallel ranks. Every
/// rank holds the same generator state; inside <see cref="Split"/>, a draw for k·b rows — k groups of this rank's b
/// images, view by view — draws the k·N·b rows that one process at the whole batch would draw from that state, and keeps
/// this rank's b rows of each group. N ranks at batch B/N then see the views one process at batch B sees, and the
/// generators stay alike, since every rank consumes what one process would.
/// </summary>
internal static class SampleDraws
{
    [ThreadStatic] private static Slice? split;

    private sealed record Slice(int Rank, int Ranks, long Images);

    /// <summary>
    /// Until disposed, this thread's draws of a multiple of <paramref name="images"/> rows are rank <paramref name="rank"/>'s
    /// of <paramref name="ranks"/> equal slices of the global batch; nothing when <paramref name="ranks"/> is 1.
    /// </summary>
    public static IDisposable Split(int rank, int ranks, long images)
    {
        var previous = split;
        split = ranks > 1 ? new Slice(rank, ranks, images) : null;
        return new Restore(previous);
    }

    /// <summary>Uniform [0, 1) draws of <paramref name="shape"/>, whose first dimension counts samples.</summary>
    public static Tensor Rand(long[] shape, Generator generator) => Draw(shape, s => rand(s, generator: generator));

    /// <summary>Standard normal draws of <paramref name="shape"/>, whose first dimension counts samples.</summary>
    public static Tensor Randn(long[] shape, Generator generator) => Draw(shape, s => randn(s, generator: generator));

    /// <summary>Integers uniform in [0, <paramref name="high"/>) of <paramref name="shape"/> (int64), whose first dimension counts samples.</summary>
    public static Tensor RandInt(long high, long[] shape, Generator generator) =>
        Draw(shape, s => randint(high, s, generator: generator, dtype: ScalarType.Int64));

    /// <summary>
    /// Inside <see cref="Split"/>, this thread's rank, the number of ranks and the images of each rank's slice: for a
    /// draw over the whole batch (a permutation, masks drawn together) that the caller makes for N·b rows and slices
    /// itself. Null outside a split.
    /// </summary>
    public static (int Rank, int Ranks, long Images)? Current => split is { } s ? (s.Rank, s.Ranks, s.Images) : null;

    private static Tensor Draw(long[] shape, Func<long[], Tensor> draw)
    {
        // Outside a split, or a draw that is not per image of the slice: this rank's own draw.
        if (split is not { } slice || shape.Length == 0 || shape[0] % slice.Images != 0) return draw(shape);
        var groups = shape[0] / slice.Images;
        using var scope = NewDisposeScope();
        var global = draw([groups * slice.Ranks * slice.Images, .. shape[1..]]);
        var mine = global.view([groups, slice.Ranks, slice.Images, .. shape[1..]]).select(1, slice.Rank).reshape(shape);
        return mine.MoveToOuterDisposeScope();
    }

    private sealed class Restore(Slice? previous) : IDisposable
    {
        public void Dispose() => split = previous;
    }
}
