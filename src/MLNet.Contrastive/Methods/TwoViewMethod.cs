using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// The common shape of SimCLR, triplet, Barlow Twins and VICReg: two views of every image from the run's recipe, one
/// forward pass of the 2B views through encoder and head, and an objective of the two views' head outputs.
/// </summary>
public abstract class TwoViewMethod : PretrainingMethod
{
    private readonly ProjectionHead head;
    private readonly ViewAugmenter views;

    /// <summary>Registers <paramref name="head"/> as the method's "head" module.</summary>
    protected TwoViewMethod(string name, ResNetEncoder encoder, MethodOptions options, MethodSetup setup, ProjectionHead head)
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
    public sealed override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var n = (int)images.shape[0];
        var features = Encoder.forward(TwoViews(images, views, views, context));
        context.Mark("encoder");
        var z = head.forward(features);
        return Objective(z[..n], z[n..]).MoveToOuterDisposeScope();
    }

    /// <summary>The loss (a scalar) of the head outputs z1, z2 [B, P] of the first and second views.</summary>
    protected abstract Tensor Objective(Tensor z1, Tensor z2);
}
