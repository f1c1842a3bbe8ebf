using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// RotNet's pretext task (Gidaris et al. 2018): every image at 0°, 90°, 180° and 270°, and a 4-way
/// classification of the rotation.
/// </summary>
public static class RotationPrediction
{
    /// <summary>The four rotations: 0°, 90°, 180°, 270°.</summary>
    public const int Rotations = 4;

    /// <summary>
    /// images [B, C, H, W] with H = W → ([4B, C, H, W], labels [4B]): block r holds every image rotated by r·90°
    /// counter-clockwise, label r. Non-square images are centre-cropped to a square first.
    /// </summary>
    public static (Tensor Images, Tensor Labels) AllRotations(Tensor images)
    {
        using var scope = NewDisposeScope();
        var square = CenterSquare(images);
        var b = square.shape[0];
        var rotated = cat(Enumerable.Range(0, Rotations).Select(r => square.rot90(r, (2, 3))).ToArray(), 0);
        var labels = arange(Rotations, dtype: ScalarType.Int64, device: images.device).repeat_interleave(b);
        return (rotated.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }

    /// <summary>The largest centred square of each image, [B, C, S, S] with S = min(H, W).</summary>
    public static Tensor CenterSquare(Tensor images)
    {
        long h = images.shape[2], w = images.shape[3], s = Math.Min(h, w);
        return h == w ? images.alias() : images.narrow(2, (h - s) / 2, s).narrow(3, (w - s) / 2, s);
    }

    /// <summary>logits [4B, 4], labels [4B] → mean cross-entropy, a scalar.</summary>
    public static Tensor Loss(Tensor logits, Tensor labels) => F.cross_entropy(logits, labels);
}
