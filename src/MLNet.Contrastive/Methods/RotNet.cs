using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Rotation prediction (RotNet, Gidaris et al. 2018): all four rotations of every image in the batch, a 4-way
/// head on the encoder. Optionally each image first gets a light view (crop 0.6–1, flip); colour augmentation is not
/// used, as in the paper.
/// </summary>
public sealed class RotNet : PretrainingMethod
{
    private readonly ResNetEncoder encoder;
    private readonly ProjectionHead head;
    private readonly ViewAugmenter? light;

    public RotNet(ResNetEncoder encoder, int hiddenDimension, bool augment) : base(nameof(RotNet), encoder)
    {
        this.encoder = encoder;
        head = new ProjectionHead(encoder.EmbeddingDimension, hiddenDimension, RotationPrediction.Rotations);
        light = augment ? new ViewAugmenter(AugmentationOptions.CropAndFlip()) : null;
        RegisterComponents();
    }

    public override int ViewsPerImage => RotationPrediction.Rotations;

    public override Tensor Loss(Tensor images, Tensor? labels, ViewAugmenter augmenter, Generator generator)
    {
        using var scope = NewDisposeScope();
        var views = light is null ? images : light.Augment(images, generator);
        var (rotated, rotations) = RotationPrediction.AllRotations(views);
        return RotationPrediction.Loss(head.forward(encoder.forward(rotated)), rotations).MoveToOuterDisposeScope();
    }
}
