using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// MAE's reconstruction objective (He et al. 2022), after facebookresearch/mae <c>models_mae.py</c> (<c>patchify</c>,
/// <c>forward_loss</c> with <c>norm_pix_loss</c>): the mean squared error between predicted and true pixels of each
/// patch, averaged over the masked patches only.
/// </summary>
public static class MaeLoss
{
    /// <summary>
    /// Images [N, C, H, W] as rows of patch pixels [N, L, P²·C], patches in row-major order, each patch's pixels row by
    /// row with the channels innermost (MAE's <c>nchpwq → nhwpqc</c>). H and W must be multiples of <paramref name="patchSize"/>.
    /// </summary>
    public static Tensor Patchify(Tensor images, int patchSize)
    {
        if (images.ndim != 4) throw new ArgumentException($"The images must be [N, C, H, W]; got [{string.Join(", ", images.shape)}].", nameof(images));
        var (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3]);
        if (h % patchSize != 0 || w % patchSize != 0)
            throw new ArgumentException($"Images of {h}×{w} px do not split into {patchSize}×{patchSize} patches.", nameof(images));
        var (rows, columns) = (h / patchSize, w / patchSize);
        return images.reshape(n, c, rows, patchSize, columns, patchSize).permute(0, 2, 4, 3, 5, 1).reshape(n, rows * columns, patchSize * patchSize * c);
    }

    /// <summary>
    /// Each patch's pixels [N, L, P²·C] standardised by the patch's own mean and (unbiased) variance, (x − μ) / √(σ² + 10⁻⁶),
    /// MAE's <c>norm_pix_loss</c> target.
    /// </summary>
    public static Tensor NormalizePatches(Tensor patches)
    {
        using var scope = NewDisposeScope();
        var mean = patches.mean([-1], keepdim: true);
        var variance = patches.var(-1, unbiased: true, keepdim: true);
        return ((patches - mean) / (variance + 1e-6).sqrt()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The loss: Σ_patches mask · mean_pixels (prediction − target)² / Σ mask. A scalar.
    /// </summary>
    /// <param name="prediction">The decoder's pixels of every patch [N, L, P²·C].</param>
    /// <param name="target">The true pixels [N, L, P²·C] (<see cref="Patchify"/>, optionally <see cref="NormalizePatches"/>).</param>
    /// <param name="mask">[N, L], 1 on the masked patches (the only ones scored), 0 on the visible ones.</param>
    public static Tensor Compute(Tensor prediction, Tensor target, Tensor mask)
    {
        using var scope = NewDisposeScope();
        return ((PerPatch(prediction, target, mask) * mask).sum() / mask.sum()).MoveToOuterDisposeScope();
    }

    /// <summary>Per-image mean squared error over the masked patches, [N]: <see cref="Compute"/> kept per image (a reconstruction energy).</summary>
    public static Tensor PerImage(Tensor prediction, Tensor target, Tensor mask)
    {
        using var scope = NewDisposeScope();
        return ((PerPatch(prediction, target, mask) * mask).sum(1) / mask.sum(1)).MoveToOuterDisposeScope();
    }

    /// <summary>Mean squared error of each patch [N, L], hidden or not (<paramref name="mask"/> [N, L] only checked for shape).</summary>
    public static Tensor PerPatch(Tensor prediction, Tensor target, Tensor mask)
    {
        if (prediction.ndim != 3 || !prediction.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"The prediction and target must both be [N, L, P²·C]; got [{string.Join(", ", prediction.shape)}] and [{string.Join(", ", target.shape)}].");
        if (mask.ndim != 2 || mask.shape[0] != prediction.shape[0] || mask.shape[1] != prediction.shape[1])
            throw new ArgumentException($"The mask must be [{prediction.shape[0]}, {prediction.shape[1]}]; got [{string.Join(", ", mask.shape)}].", nameof(mask));
        return (prediction - target.detach()).square().mean([-1]);
    }
}
