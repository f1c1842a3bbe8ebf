using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Augmentation;

/// <summary>
/// Which patches of each image a masked-image method hides: <paramref name="Keep"/> [N, L_keep] (int64) the visible
/// patches' indices in the order the encoder sees them, <paramref name="Restore"/> [N, L] (int64) the permutation that puts
/// [visible…, masked…] back in patch order, <paramref name="Mask"/> [N, L] (float32) 1 on masked patches, 0 on visible ones.
/// </summary>
public sealed record PatchMask(Tensor Keep, Tensor Restore, Tensor Mask);

/// <summary>Random patch masking (facebookresearch/mae <c>models_mae.py</c>, <c>random_masking</c>): per-sample shuffling by argsort of uniform noise.</summary>
public static class PatchMasking
{
    /// <summary>Visible patches per image: ⌊L·(1 − ratio)⌋, as MAE's <c>int(L * (1 - mask_ratio))</c>, at least 1.</summary>
    public static int Visible(int patches, double maskRatio) => Math.Max(1, (int)(patches * (1 - maskRatio)));

    /// <summary>
    /// A random mask for <paramref name="batch"/> images of <paramref name="patches"/> patches hiding a fraction
    /// <paramref name="maskRatio"/> of each image's patches, drawn from <paramref name="generator"/>; tensors on <paramref name="device"/>.
    /// </summary>
    public static PatchMask Random(long batch, int patches, double maskRatio, Generator generator, Device? device = null)
    {
        if (!(maskRatio >= 0 && maskRatio < 1)) throw new ArgumentOutOfRangeException(nameof(maskRatio), maskRatio, "The mask ratio must be in [0, 1).");
        ArgumentOutOfRangeException.ThrowIfLessThan(patches, 1);
        using var scope = NewDisposeScope();
        var keep = Visible(patches, maskRatio);
        var shuffle = SampleDraws.Rand([batch, patches], generator).argsort(1).to(device ?? CPU);
        var restore = shuffle.argsort(1);
        var mask = cat(new[] { zeros(batch, keep, device: device), ones(batch, patches - keep, device: device) }, 1).gather(1, restore);
        return new PatchMask(shuffle.narrow(1, 0, keep).MoveToOuterDisposeScope(), restore.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Masks that together hide every patch: a permutation of the <paramref name="patches"/> patches drawn from
    /// <paramref name="seed"/> is read in turns of <see cref="Visible"/> patches (wrapping round), each turn the visible set
    /// of one mask, until every patch has been visible once; with MAE's ratio 0.75 on a 7 × 7 grid, 5 masks of 12 visible
    /// patches, so every patch is hidden in 3 or 4 of them. The same for every image, so an image's reconstruction does not
    /// depend on the images scored with it. Each entry is a mask's visible patches in ascending order.
    /// </summary>
    public static IReadOnlyList<int[]> Cover(int patches, double maskRatio, int seed)
    {
        if (!(maskRatio > 0 && maskRatio < 1)) throw new ArgumentOutOfRangeException(nameof(maskRatio), maskRatio, "The mask ratio must be in (0, 1).");
        ArgumentOutOfRangeException.ThrowIfLessThan(patches, 2);
        var keep = Visible(patches, maskRatio);
        if (keep >= patches) throw new ArgumentOutOfRangeException(nameof(maskRatio), maskRatio, $"A mask ratio of {maskRatio} hides none of {patches} patches.");
        var order = Enumerable.Range(0, patches).ToArray();
        new System.Random(seed).Shuffle(order);
        var count = (patches + keep - 1) / keep;
        return [.. Enumerable.Range(0, count).Select(m => Enumerable.Range(0, keep).Select(j => order[(m * keep + j) % patches]).Order().ToArray())];
    }

    /// <summary>
    /// The same mask for each of <paramref name="batch"/> images of <paramref name="patches"/> patches: the patches in
    /// <paramref name="visible"/> are seen, the rest hidden; tensors on <paramref name="device"/>.
    /// </summary>
    public static PatchMask Fixed(IReadOnlyList<int> visible, int patches, long batch, Device? device = null)
    {
        var seen = new bool[patches];
        foreach (var p in visible)
        {
            if ((uint)p >= (uint)patches) throw new ArgumentOutOfRangeException(nameof(visible), p, $"Patch {p} is outside the image's {patches}.");
            seen[p] = true;
        }
        var order = visible.Select(p => (long)p).Concat(Enumerable.Range(0, patches).Where(p => !seen[p]).Select(p => (long)p)).ToArray();
        if (order.Length != patches) throw new ArgumentException("The visible patches must be distinct.", nameof(visible));
        using var scope = NewDisposeScope();
        var shuffle = tensor(order, device: device ?? CPU).unsqueeze(0).expand(batch, -1).contiguous();
        var mask = tensor(seen.Select(s => s ? 0f : 1f).ToArray(), device: device ?? CPU).unsqueeze(0).expand(batch, -1).contiguous();
        return new PatchMask(shuffle.narrow(1, 0, visible.Count).contiguous().MoveToOuterDisposeScope(), shuffle.argsort(1).MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// iBOT's random masking (microsoft/iBOT <c>MaskingGenerator</c>'s <c>pred_shape='rand'</c>, ratio 0.3 ± 0.2): each
    /// of <paramref name="batch"/> images hides ⌊L·r⌋ of its <paramref name="patches"/> patches (at least 1, at most
    /// L − 1), r drawn per image uniformly from [<paramref name="minRatio"/>, <paramref name="maxRatio"/>]; the patches by
    /// the same argsort of uniform noise as <see cref="Random"/>. [N, L] float32, 1 on masked patches, on <paramref name="device"/>.
    /// </summary>
    public static Tensor RandomRatios(long batch, int patches, double minRatio, double maxRatio, Generator generator, Device? device = null)
    {
        if (!(minRatio > 0 && minRatio <= maxRatio && maxRatio < 1))
            throw new ArgumentOutOfRangeException(nameof(minRatio), $"The mask ratios must satisfy 0 < {nameof(minRatio)} ≤ {nameof(maxRatio)} < 1; got {minRatio} and {maxRatio}.");
        ArgumentOutOfRangeException.ThrowIfLessThan(patches, 2);
        using var scope = NewDisposeScope();
        var ratios = SampleDraws.Rand([batch, 1L], generator) * (maxRatio - minRatio) + minRatio;
        var counts = (ratios * patches).floor().clamp(1, patches - 1);
        var rank = SampleDraws.Rand([batch, patches], generator).argsort(1).argsort(1);
        return rank.lt(counts).to_type(ScalarType.Float32).to(device ?? CPU).MoveToOuterDisposeScope();
    }
}
