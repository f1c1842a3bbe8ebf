using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// SimCLR (Chen et al. 2020): two random views per image, encoder → projection head, NT-Xent over the 2N views.
/// </summary>
public sealed class SimClr : PretrainingMethod
{
    private readonly ResNetEncoder encoder;
    private readonly ProjectionHead projection;
    private readonly double temperature;

    public SimClr(ResNetEncoder encoder, int projectionHiddenDimension, int projectionDimension, double temperature)
        : base(nameof(SimClr), encoder)
    {
        this.encoder = encoder;
        projection = new ProjectionHead(encoder.EmbeddingDimension, projectionHiddenDimension, projectionDimension);
        this.temperature = temperature;
        RegisterComponents();
    }

    public override int ViewsPerImage => 2;

    public override Tensor Loss(Tensor images, Tensor? labels, ViewAugmenter augmenter, Generator generator)
    {
        using var scope = NewDisposeScope();
        var z = projection.forward(encoder.forward(TwoViews(images, augmenter, generator)));
        var (z1, z2) = (z[..(int)images.shape[0]], z[(int)images.shape[0]..]);
        return NtXentLoss.Compute(z1, z2, temperature).MoveToOuterDisposeScope();
    }
}
