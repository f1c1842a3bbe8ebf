using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="Supervised"/>.</summary>
public sealed class SupervisedOptions : MethodOptions
{
    /// <summary>Number of classes; 0 takes the count of the training data's labels (and the checkpoint records it). Default 0.</summary>
    public int Classes { get; set; }

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ResNetEncoder encoder, MethodSetup setup)
    {
        var resolved = new SupervisedOptions { Classes = Classes > 0 ? Classes : setup.Classes };
        return new Supervised(encoder, resolved);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        if (Classes is < 0 or 1) throw new ArgumentOutOfRangeException(nameof(Classes), Classes, "Classes must be 0 (from the data) or at least 2.");
    }
}

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

    /// <summary>A classifier of <c>options.Classes</c> classes on <paramref name="encoder"/>.</summary>
    public Supervised(ResNetEncoder encoder, SupervisedOptions options) : base(nameof(Supervised), encoder, options)
    {
        if (options.Classes < 2) throw new ArgumentException($"Supervised training needs labelled images of at least 2 classes (a labelled image folder or a labels file); the data has {options.Classes}.", nameof(options));
        this.encoder = encoder;
        classifier = nn.Linear(encoder.EmbeddingDimension, options.Classes);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override bool RequiresLabels => true;

    /// <inheritdoc/>
    public override int ViewsPerImage => 1;

    /// <summary>Cross-entropy of the classifier's logits [B, classes] on one crop-and-flip view of each image.</summary>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        var labels = context.Labels ?? throw new ArgumentException("Supervised training needs the batch's labels.", nameof(context));
        using var scope = NewDisposeScope();
        var x = views.Augment(images, context.Generator);
        context.Mark("views");
        var logits = classifier.forward(encoder.forward(x));
        return nn.functional.cross_entropy(logits, labels).MoveToOuterDisposeScope();
    }
}
