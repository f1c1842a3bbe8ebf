using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="Triplet"/>.</summary>
public sealed class TripletOptions : MethodOptions
{
    /// <summary>The margin between positive and negative distances. Default 0.5 (distances lie in [0, 2]).</summary>
    public double Margin { get; set; } = TripletMarginLoss.DefaultMargin;

    /// <summary>How each anchor's negative is chosen. Default <see cref="TripletMining.SemiHard"/>.</summary>
    public TripletMining Mining { get; set; } = TripletMining.SemiHard;

    /// <summary>The distance between L2-normalised embeddings. Default <see cref="TripletDistance.Cosine"/>.</summary>
    public TripletDistance Distance { get; set; } = TripletDistance.Cosine;

    /// <summary>Projection head hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Projection head output size. Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Triplet(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Range(Margin, 0, 2, nameof(Margin));
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
    }
}

/// <summary>
/// Margin triplet loss on two views per image: encoder → projection head → L2-normalised embeddings; anchor and
/// positive are the two views of an image, negatives come from the batch (batch-hard or semi-hard mining).
/// </summary>
public sealed class Triplet : TwoViewMethod
{
    private readonly TripletOptions options;

    /// <summary>Triplet around <paramref name="encoder"/>.</summary>
    public Triplet(ImageEncoder encoder, TripletOptions options, MethodSetup setup)
        : base(nameof(Triplet), encoder, options, setup, new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension))
    {
        this.options = options;
    }

    /// <inheritdoc/>
    protected override Tensor Objective(Tensor z1, Tensor z2) => TripletMarginLoss.Compute(z1, z2, options.Margin, options.Mining, options.Distance);
}
