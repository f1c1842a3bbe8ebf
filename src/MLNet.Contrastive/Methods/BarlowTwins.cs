using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="BarlowTwins"/>.</summary>
public sealed class BarlowTwinsOptions : MethodOptions
{
    /// <summary>Projector hidden size. Default 1024.</summary>
    public int ProjectionHiddenDimension { get; set; } = 1024;

    /// <summary>Projector output size D (the cross-correlation matrix is D × D). Default 1024.</summary>
    public int ProjectionDimension { get; set; } = 1024;

    /// <summary>Weight λ of the off-diagonal (redundancy) term; null uses 1/D. Default null.</summary>
    public double? Lambda { get; set; }

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new BarlowTwins(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
        if (Lambda is { } lambda) Range(lambda, 0, 1, nameof(Lambda));
    }
}

/// <summary>
/// Barlow Twins (Zbontar et al. 2021): encoder → projector for two views, and the cross-correlation of the
/// batch-standardised projections driven to the identity (<see cref="BarlowTwinsLoss"/>). No negatives, no target.
/// </summary>
public sealed class BarlowTwins : TwoViewMethod
{
    private readonly double lambda;

    /// <summary>BarlowTwins around <paramref name="encoder"/>.</summary>
    public BarlowTwins(ImageEncoder encoder, BarlowTwinsOptions options, MethodSetup setup)
        : base(nameof(BarlowTwins), encoder, options, setup, new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension))
    {
        lambda = options.Lambda ?? 1.0 / options.ProjectionDimension;
    }

    /// <inheritdoc/>
    protected override Tensor Objective(Tensor z1, Tensor z2) => BarlowTwinsLoss.Compute(z1, z2, lambda);
}
