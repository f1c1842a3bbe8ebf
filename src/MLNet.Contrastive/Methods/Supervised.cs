using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// The supervised-from-scratch baseline of the label-efficiency curve: the same encoder and a linear classifier
/// trained with cross-entropy on the labelled images only, with crop-and-flip views (the usual supervised recipe;
/// the self-supervised colour augmentations are not used).
/// </summary>
public sealed class Supervised : PretrainingMethod
{
    private readonly ResNetEncoder encoder;
    private readonly Linear classifier;
    private readonly ViewAugmenter views = new(AugmentationOptions.CropAndFlip());

    public Supervised(ResNetEncoder encoder, int classes) : base(nameof(Supervised), encoder)
    {
        if (classes < 2) throw new ArgumentException($"Supervised training needs labelled images of at least 2 classes (a labelled image folder or a labels file); the data has {classes}.", nameof(classes));
        this.encoder = encoder;
        classifier = nn.Linear(encoder.EmbeddingDimension, classes);
        RegisterComponents();
    }

    public override bool RequiresLabels => true;

    public override int ViewsPerImage => 1;

    /// <summary>Cross-entropy of the classifier's logits [B, classes] on one crop-and-flip view of each image.</summary>
    public override Tensor Loss(Tensor images, Tensor? labels, ViewAugmenter augmenter, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(labels);
        using var scope = NewDisposeScope();
        var logits = classifier.forward(encoder.forward(views.Augment(images, generator)));
        return nn.functional.cross_entropy(logits, labels).MoveToOuterDisposeScope();
    }
}
