using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="Dcl"/> without weighting (<c>dcl</c>); <see cref="DclwOptions"/> adds DCLW's weights.</summary>
public class DclOptions : MethodOptions
{
    /// <summary>Temperature τ. Default 0.1 (lightly's and the paper's).</summary>
    public double Temperature { get; set; } = DecoupledContrastiveLoss.DefaultTemperature;

    /// <summary>Projection head hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Projection head output size. Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Dcl(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(Temperature, nameof(Temperature));
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
    }
}

/// <summary>Settings of <see cref="Dcl"/> with the negative von Mises-Fisher weighting of the positive pairs (<c>dclw</c>).</summary>
public sealed class DclwOptions : DclOptions
{
    /// <summary>σ of the weights w = 2 − N·softmax(cos/σ) over the batch's positive pairs. Default 0.5 (the paper's).</summary>
    public double Sigma { get; set; } = DecoupledContrastiveLoss.DefaultSigma;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Positive(Sigma, nameof(Sigma));
    }
}

/// <summary>
/// DCL and DCLW (Yeh et al. 2022): SimCLR's views, encoder and projection head, with the decoupled contrastive loss —
/// the positive pair left out of NT-Xent's denominator (<see cref="DecoupledContrastiveLoss"/>), and for DCLW the
/// positives weighted by how little their views agree. Meant to hold up at small batches, where NT-Xent's coupling hurts.
/// </summary>
public sealed class Dcl : TwoViewMethod
{
    private readonly double temperature;
    private readonly double? sigma;

    /// <summary>DCL around <paramref name="encoder"/>; DCLW when <paramref name="options"/> is <see cref="DclwOptions"/>.</summary>
    public Dcl(ImageEncoder encoder, DclOptions options, MethodSetup setup)
        : base(nameof(Dcl), encoder, options, setup, new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension))
    {
        temperature = options.Temperature;
        sigma = (options as DclwOptions)?.Sigma;
    }

    /// <inheritdoc/>
    protected override Tensor Objective(Tensor z1, Tensor z2) => DecoupledContrastiveLoss.Compute(z1, z2, temperature, sigma);
}
