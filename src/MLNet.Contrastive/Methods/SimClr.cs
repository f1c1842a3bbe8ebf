using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="SimClr"/>.</summary>
public sealed class SimClrOptions : MethodOptions
{
    /// <summary>NT-Xent temperature τ. Default 0.2.</summary>
    public double Temperature { get; set; } = NtXentLoss.DefaultTemperature;

    /// <summary>Projection head hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Projection head output size. Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new SimClr(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(Temperature, nameof(Temperature));
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
    }
}

/// <summary>
/// SimCLR (Chen et al. 2020): two random views per image, encoder → projection head, NT-Xent over the 2N views.
/// </summary>
public sealed class SimClr : TwoViewMethod
{
    private readonly double temperature;

    /// <summary>SimClr around <paramref name="encoder"/>.</summary>
    public SimClr(ImageEncoder encoder, SimClrOptions options, MethodSetup setup)
        : base(nameof(SimClr), encoder, options, setup, new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension))
    {
        temperature = options.Temperature;
    }

    /// <inheritdoc/>
    protected override Tensor Objective(Tensor z1, Tensor z2) => NtXentLoss.Compute(z1, z2, temperature);

    /// <inheritdoc/>
    protected override (Tensor Loss, Tensor Gradient1, Tensor Gradient2)? ObjectiveWithGradient(Tensor z1, Tensor z2) =>
        NtXentLoss.ComputeWithGradient(z1, z2, temperature);
}
