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
