using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Augmentation;

/// <summary>
/// I-JEPA's masks for a batch: <paramref name="Context"/> [N, L_ctx] (int64) the patches the context encoder sees, row-major
/// indices in ascending order; <paramref name="Targets"/> [M·N, L_tgt] (int64) the patches of each target block, block-major
/// (row m·N + i is block m of image i) so that a context repeated M times lines up with it.
/// </summary>
public sealed record BlockMask(Tensor Context, Tensor Targets);

/// <summary>
/// I-JEPA's multi-block masking on a rows × columns patch grid, after facebookresearch/ijepa <c>src/masks/multiblock.py</c>
/// (lightly: <c>IJEPAMaskCollator</c>). One target-block size (scale, aspect ratio) and one context-block size (aspect 1) are
/// drawn per batch, so every image has the same number of target patches; each image then places
/// <see cref="TargetBlocks"/> target blocks anywhere and one context block, from which every target patch is removed. A
/// context left with fewer than <see cref="MinimumContext"/> patches is placed again; after 20 failed places one target
/// block's constraint is dropped, as the reference. Contexts are cut to the batch's smallest so they stack.
/// </summary>
public sealed class BlockMasking
{
    private const int PlacementsPerConstraint = 20;

    /// <summary>M, target blocks per image. Default 4.</summary>
    public int TargetBlocks { get; init; } = 4;

    /// <summary>Area fraction of each target block. Default 0.15–0.2.</summary>
    public (double Min, double Max) TargetScale { get; init; } = (0.15, 0.2);

    /// <summary>Height-to-width ratio of the target blocks. Default 0.75–1.5.</summary>
    public (double Min, double Max) TargetAspect { get; init; } = (0.75, 1.5);

    /// <summary>Area fraction of the context block before the targets are removed. Default 0.85–1.0.</summary>
    public (double Min, double Max) ContextScale { get; init; } = (0.85, 1.0);

    /// <summary>Fewest context patches accepted before a block is placed again (the reference's <c>min_keep</c>: 10). Default 4 for small grids.</summary>
    public int MinimumContext { get; init; } = 4;

    /// <summary>Masks for <paramref name="batch"/> images on a <paramref name="rows"/> × <paramref name="columns"/> grid, drawn from <paramref name="generator"/>.</summary>
    public BlockMask Sample(int batch, int rows, int columns, Generator generator, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        if (rows < 2 || columns < 2) throw new ArgumentOutOfRangeException(nameof(rows), $"Block masking needs a grid of at least 2 × 2 patches; got {rows} × {columns}.");
        ArgumentOutOfRangeException.ThrowIfLessThan(TargetBlocks, 1, nameof(TargetBlocks));
        // One draw from the step's generator seeds the placement, so the masks repeat with the generator's state.
        long seed;
        using (var draw = randint(int.MaxValue, [1], generator: generator)) seed = draw.item<long>();
        var random = new Random((int)seed);
        var (targetHeight, targetWidth) = BlockSize(random, rows, columns, TargetScale, TargetAspect);
        var (contextHeight, contextWidth) = BlockSize(random, rows, columns, ContextScale, (1, 1));
        // Over data-parallel ranks (SampleDraws.Split) the masks of the global batch are drawn, as one process draws them,
        // and this rank keeps its images' rows.
        var (rank, ranks) = SampleDraws.Current is { Ranks: > 1 } slice && slice.Images == batch ? (slice.Rank, slice.Ranks) : (0, 1);
        var all = batch * ranks;
        var targets = new long[TargetBlocks * all][];
        var contexts = new long[all][];
        for (var i = 0; i < all; i++)
        {
            var covered = new List<bool[]>();
            for (var m = 0; m < TargetBlocks; m++)
            {
                var block = Place(random, rows, columns, targetHeight, targetWidth);
                covered.Add(block);
                targets[m * all + i] = Indices(block);
            }
            contexts[i] = Context(random, rows, columns, contextHeight, contextWidth, covered);
        }
        var keep = contexts.Min(c => c.Length);
        if (ranks > 1)
        {
            targets = [.. Enumerable.Range(0, TargetBlocks).SelectMany(m => targets.Skip(m * all + rank * batch).Take(batch))];
            contexts = contexts[(rank * batch)..((rank + 1) * batch)];
        }
        using var scope = NewDisposeScope();
        var context = tensor(contexts.SelectMany(c => c.Take(keep)).ToArray(), [batch, keep]).to(device ?? CPU);
        var target = tensor(targets.SelectMany(t => t).ToArray(), [TargetBlocks * batch, targetHeight * targetWidth]).to(device ?? CPU);
        return new BlockMask(context.MoveToOuterDisposeScope(), target.MoveToOuterDisposeScope());
    }

    /// <summary>The reference's <c>_sample_block_size</c>: one uniform sets both scale and aspect; sides shrink below the grid's.</summary>
    internal static (int Height, int Width) BlockSize(Random random, int rows, int columns, (double Min, double Max) scale, (double Min, double Max) aspect)
    {
        var u = random.NextDouble();
        var area = (int)(rows * columns * (scale.Min + u * (scale.Max - scale.Min)));
        var ratio = aspect.Min + u * (aspect.Max - aspect.Min);
        var height = Math.Max(1, (int)Math.Round(Math.Sqrt(area * ratio)));
        var width = Math.Max(1, (int)Math.Round(Math.Sqrt(area / ratio)));
        return (Math.Min(height, rows - 1), Math.Min(width, columns - 1));
    }

    private static bool[] Place(Random random, int rows, int columns, int height, int width)
    {
        var (top, left) = (random.Next(rows - height + 1), random.Next(columns - width + 1));
        var block = new bool[rows * columns];
        for (var r = top; r < top + height; r++)
            for (var c = left; c < left + width; c++) block[r * columns + c] = true;
        return block;
    }

    /// <summary>The reference's <c>_sample_block_mask</c> with acceptable regions: the context block minus the target blocks.</summary>
    private long[] Context(Random random, int rows, int columns, int height, int width, List<bool[]> targets)
    {
        for (var dropped = 0; ; dropped++)
        {
            var constraints = Math.Max(targets.Count - dropped, 0);
            for (var attempt = 0; attempt < PlacementsPerConstraint; attempt++)
            {
                var block = Place(random, rows, columns, height, width);
                for (var k = 0; k < constraints; k++)
                    for (var p = 0; p < block.Length; p++) block[p] &= !targets[k][p];
                var indices = Indices(block);
                if (indices.Length >= Math.Min(MinimumContext, height * width) || constraints == 0) return indices;
            }
        }
    }

    private static long[] Indices(bool[] block) => [.. Enumerable.Range(0, block.Length).Where(p => block[p]).Select(p => (long)p)];
}
