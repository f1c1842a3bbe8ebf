using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Margin triplet loss on two views per image: encoder → projection head → L2-normalised embeddings; anchor and
/// positive are the two views of an image, negatives come from the batch (batch-hard or semi-hard mining).
/// </summary>
public sealed class Triplet : PretrainingMethod
{
    private readonly ResNetEncoder encoder;
    private readonly ProjectionHead projection;
    private readonly double margin;
    private readonly TripletMining mining;
    private readonly TripletDistance distance;

    public Triplet(ResNetEncoder encoder, int hiddenDimension, int projectionDimension, double margin, TripletMining mining,
        TripletDistance distance) : base(nameof(Triplet), encoder)
    {
        this.encoder = encoder;
        projection = new ProjectionHead(encoder.EmbeddingDimension, hiddenDimension, projectionDimension);
        (this.margin, this.mining, this.distance) = (margin, mining, distance);
        RegisterComponents();
    }

    public override int ViewsPerImage => 2;

    public override Tensor Loss(Tensor images, Tensor? labels, ViewAugmenter augmenter, Generator generator)
    {
        using var scope = NewDisposeScope();
        var n = (int)images.shape[0];
        var z = projection.forward(encoder.forward(TwoViews(images, augmenter, generator)));
        return TripletMarginLoss.Compute(z[..n], z[n..], margin, mining, distance).MoveToOuterDisposeScope();
    }
}
