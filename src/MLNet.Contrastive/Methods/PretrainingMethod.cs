using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// A self-supervised method: the encoder that is kept and exported, plus the heads its objective needs.
/// Subclasses make views of a batch, run them through encoder and heads, and return the objective's loss.
/// </summary>
public abstract class PretrainingMethod : nn.Module
{
    protected PretrainingMethod(string name, ResNetEncoder encoder) : base(name)
    {
        Encoder = encoder;
    }

    /// <summary>The encoder being pretrained; input [N, C, H, W] in [0, 1], output [N, D].</summary>
    public ResNetEncoder Encoder { get; }

    /// <summary>How many augmented views of each image one step processes (for views/s).</summary>
    public abstract int ViewsPerImage { get; }

    /// <summary>The training loss (a scalar) for a batch of images [B, C, H, W] in [0, 1].</summary>
    public abstract Tensor Loss(Tensor images, ViewAugmenter augmenter, Generator generator);

    /// <summary>
    /// Two random views of every image, [2B, C, H, W]: rows 0…B−1 the first views, B…2B−1 the second. One forward pass
    /// over both lets batch norm see all 2B views, as in SimCLR.
    /// </summary>
    protected static Tensor TwoViews(Tensor images, ViewAugmenter augmenter, Generator generator) =>
        cat(new[] { augmenter.Augment(images, generator), augmenter.Augment(images, generator) }, 0);
}
