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

    /// <summary>Whether <see cref="Loss"/> needs the batch's labels (the supervised baseline); self-supervised methods do not.</summary>
    public virtual bool RequiresLabels => false;

    /// <summary>
    /// The training loss (a scalar) for a batch of images [B, C, H, W] in [0, 1]; <paramref name="labels"/> [B] (int64
    /// class indices) is given when the data is labelled and ignored by self-supervised methods.
    /// </summary>
    public abstract Tensor Loss(Tensor images, Tensor? labels, ViewAugmenter augmenter, Generator generator);

    /// <summary>
    /// Two random views of every image, [2B, C, H, W]: rows 0…B−1 the first views, B…2B−1 the second. One forward pass
    /// over both lets batch norm see all 2B views, as in SimCLR.
    /// </summary>
    protected static Tensor TwoViews(Tensor images, ViewAugmenter augmenter, Generator generator) =>
        cat(new[] { augmenter.Augment(images, generator), augmenter.Augment(images, generator) }, 0);
}
