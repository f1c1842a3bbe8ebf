using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="VicReg"/>.</summary>
public sealed class VicRegOptions : MethodOptions
{
    /// <summary>Expander hidden size. Default 1024.</summary>
    public int ProjectionHiddenDimension { get; set; } = 1024;

    /// <summary>Expander output size. Default 1024.</summary>
    public int ProjectionDimension { get; set; } = 1024;

    /// <summary>Weight of the invariance (mean squared error) term. Default 25.</summary>
    public double InvarianceWeight { get; set; } = VicRegLoss.DefaultInvarianceWeight;

    /// <summary>Weight of the variance hinge. Default 25.</summary>
    public double VarianceWeight { get; set; } = VicRegLoss.DefaultVarianceWeight;

    /// <summary>Weight of the covariance term. Default 1.</summary>
    public double CovarianceWeight { get; set; } = VicRegLoss.DefaultCovarianceWeight;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new VicReg(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
        Range(InvarianceWeight, 0, 1e6, nameof(InvarianceWeight));
        Range(VarianceWeight, 0, 1e6, nameof(VarianceWeight));
        Range(CovarianceWeight, 0, 1e6, nameof(CovarianceWeight));
    }
}

/// <summary>
/// VICReg (Bardes et al. 2022): encoder → expander for two views; invariance between the views, a variance hinge that
/// keeps every dimension's spread above 1 (against collapse), and a covariance penalty that decorrelates dimensions.
/// </summary>
public sealed class VicReg : TwoViewMethod
{
    private readonly VicRegOptions options;

    /// <summary>VicReg around <paramref name="encoder"/>.</summary>
    public VicReg(ImageEncoder encoder, VicRegOptions options, MethodSetup setup)
        : base(nameof(VicReg), encoder, options, setup, new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension))
    {
        this.options = options;
    }

    /// <inheritdoc/>
    protected override Tensor Objective(Tensor z1, Tensor z2) => VicRegLoss.Compute(z1, z2, options.InvarianceWeight, options.VarianceWeight, options.CovarianceWeight);
}
