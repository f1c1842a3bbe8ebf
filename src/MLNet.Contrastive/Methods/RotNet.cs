using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="RotNet"/>.</summary>
public sealed class RotationOptions : MethodOptions
{
    /// <summary>Light views (crop 0.6–1 and flip) before rotating. Default true.</summary>
    public bool Augment { get; set; } = true;

    /// <summary>Hidden size of the 4-way head. Default 512.</summary>
    public int HiddenDimension { get; set; } = 512;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new RotNet(encoder, this);

    /// <inheritdoc/>
    public override void Validate() => Positive(HiddenDimension, nameof(HiddenDimension));
}

/// <summary>
/// Rotation prediction (RotNet, Gidaris et al. 2018): all four rotations of every image in the batch, a 4-way
/// head on the encoder. Optionally each image first gets a light view (crop 0.6–1, flip); colour augmentation is not
/// used, as in the paper.
/// </summary>
public sealed class RotNet : PretrainingMethod
{
    private readonly ImageEncoder encoder;
    private readonly ProjectionHead head;
    private readonly ViewAugmenter? light;

    /// <summary>Rotation prediction around <paramref name="encoder"/>.</summary>
    public RotNet(ImageEncoder encoder, RotationOptions options) : base(nameof(RotNet), encoder, options)
    {
        this.encoder = encoder;
        head = new ProjectionHead(encoder.OutputDimension, options.HiddenDimension, RotationPrediction.Rotations);
        light = options.Augment ? new ViewAugmenter(AugmentationOptions.CropAndFlip()) : null;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int ViewsPerImage => RotationPrediction.Rotations;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var views = light is null ? images : light.Augment(images, context.Generator);
        var (rotated, rotations) = RotationPrediction.AllRotations(views);
        context.Mark("views");
        return RotationPrediction.Loss(head.forward(encoder.forward(rotated)), rotations).MoveToOuterDisposeScope();
    }
}
