using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// The common shape of SimCLR, triplet, Barlow Twins and VICReg: two views of every image from the run's recipe, one
/// forward pass of the 2B views through encoder and head, and an objective of the two views' head outputs.
/// </summary>
public abstract class TwoViewMethod : PretrainingMethod, IEmbeddingObjective
{
    private readonly ProjectionHead head;
    private readonly ViewAugmenter views;

    /// <summary>Registers <paramref name="head"/> as the method's "head" module.</summary>
    protected TwoViewMethod(string name, ImageEncoder encoder, MethodOptions options, MethodSetup setup, ProjectionHead head)
        : base(name, encoder, options)
    {
        this.head = head;
        views = new ViewAugmenter(setup.Views);
        register_module("encoder", encoder);
        register_module("head", head);
    }

    /// <inheritdoc/>
    public override int ViewsPerImage => 2;

    /// <inheritdoc/>
    public bool ExactAcrossRanks => true;

    /// <inheritdoc/>
    public sealed override Tensor Loss(Tensor images, StepContext context) => IEmbeddingObjective.WholeBatchLoss(this, images, context);

    /// <inheritdoc/>
    public Tensor Views(Tensor images, StepContext context) => TwoViews(images, views, views, context);

    /// <inheritdoc/>
    public Tensor Embed(Tensor views) => head.forward(Encoder.forward(views));

    /// <inheritdoc/>
    public Tensor Objective(Tensor embeddings, StepContext context)
    {
        var n = (int)embeddings.shape[0] / 2;
        return Objective(embeddings[..n], embeddings[n..]);
    }

    /// <inheritdoc/>
    public (Tensor Loss, Tensor Gradient)? ObjectiveWithGradient(Tensor embeddings, StepContext context)
    {
        var n = (int)embeddings.shape[0] / 2;
        return ObjectiveWithGradient(embeddings[..n], embeddings[n..]) is ({ } loss, { } gradient1, { } gradient2)
            ? (loss, cat(new[] { gradient1, gradient2 }, 0))
            : null;
    }

    /// <summary>The loss (a scalar) of the head outputs z1, z2 [B, P] of the first and second views.</summary>
    protected abstract Tensor Objective(Tensor z1, Tensor z2);

    /// <summary>The objective's value and its gradients with respect to z1 and z2, without its graph; null (the default) leaves them to autograd.</summary>
    protected virtual (Tensor Loss, Tensor Gradient1, Tensor Gradient2)? ObjectiveWithGradient(Tensor z1, Tensor z2) => null;
}
