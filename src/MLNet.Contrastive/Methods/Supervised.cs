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

    /// <summary>Label smoothing ε of the cross-entropy (targets 1 − ε + ε/K and ε/K). Default 0.</summary>
    public double LabelSmoothing { get; set; }

    /// <summary>The encoder's learning rate relative to the classifier's (below 1 when fine-tuning a pretrained encoder). Default 1.</summary>
    public double EncoderLearningRateFactor { get; set; } = 1;

    /// <summary>
    /// Fraction of training during which only the classifier trains and the encoder is frozen (eval-mode batch norm, no
    /// gradients): a linear-probe warm-up, so that a random classifier's gradients do not disturb pretrained features. Default 0.
    /// </summary>
    public double FrozenEncoderFraction { get; set; }

    /// <summary>
    /// Train on the run's self-supervised views (<see cref="Training.PretrainOptions.Augmentation"/>: wider crops, colour
    /// jitter, noise or blur) instead of crop 0.6–1 and flip: the noised student of Noisy Student (Xie et al. 2020) when
    /// distilling. Default false.
    /// </summary>
    public bool StrongViews { get; set; }

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ResNetEncoder encoder, MethodSetup setup)
    {
        var resolved = (SupervisedOptions)Clone();
        resolved.Classes = Classes > 0 ? Classes : setup.Classes;
        return new Supervised(encoder, resolved, setup.Views);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        if (Classes is < 0 or 1) throw new ArgumentOutOfRangeException(nameof(Classes), Classes, "Classes must be 0 (from the data) or at least 2.");
        Range(LabelSmoothing, 0, 1, nameof(LabelSmoothing));
        Positive(EncoderLearningRateFactor, nameof(EncoderLearningRateFactor));
        Range(FrozenEncoderFraction, 0, 1, nameof(FrozenEncoderFraction));
    }
}

/// <summary>
/// The supervised-from-scratch baseline of the label-efficiency curve: the same encoder and a linear classifier
/// trained with cross-entropy on the labelled images only, with crop-and-flip views (the usual supervised recipe), or
/// with <see cref="SupervisedOptions.StrongViews"/> on the run's self-supervised views.
/// </summary>
public sealed class Supervised : PretrainingMethod
{
    private readonly ResNetEncoder encoder;
    private readonly Linear classifier;
    private readonly SupervisedOptions options;
    private readonly ViewAugmenter views;

    /// <summary>
    /// A classifier of <c>options.Classes</c> classes on <paramref name="encoder"/>, trained on crop 0.6–1 and flip, or with
    /// <see cref="SupervisedOptions.StrongViews"/> on <paramref name="runViews"/> (the run's recipe, required then).
    /// </summary>
    public Supervised(ResNetEncoder encoder, SupervisedOptions options, AugmentationOptions? runViews = null) : base(nameof(Supervised), encoder, options)
    {
        if (options.Classes < 2) throw new ArgumentException($"Supervised training needs labelled images of at least 2 classes (a labelled image folder or a labels file); the data has {options.Classes}.", nameof(options));
        this.encoder = encoder;
        this.options = options;
        views = new ViewAugmenter(!options.StrongViews ? AugmentationOptions.CropAndFlip()
            : runViews ?? throw new ArgumentException("StrongViews trains on the run's views; pass them as runViews.", nameof(runViews)));
        classifier = nn.Linear(encoder.EmbeddingDimension, options.Classes);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override bool RequiresLabels => true;

    /// <inheritdoc/>
    public override int ViewsPerImage => 1;

    /// <summary>
    /// Cross-entropy (with <see cref="SupervisedOptions.LabelSmoothing"/>) of the classifier's logits [B, classes] (a linear
    /// layer on the embedding [B, E]) on one crop-and-flip view of each image, against the labels: class indices [B], or a
    /// teacher's class probabilities [B, classes] when distilling. During the frozen phase the encoder runs in eval mode
    /// without gradients.
    /// </summary>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        var labels = context.Labels ?? throw new ArgumentException("Supervised training needs the batch's labels.", nameof(context));
        using var scope = NewDisposeScope();
        var x = views.Augment(images, context.Generator);
        context.Mark("views");
        var frozen = context.Progress < options.FrozenEncoderFraction;
        encoder.train(training && !frozen);
        Tensor features;
        using (var noGrad = frozen ? no_grad() : null) features = encoder.Embed(x);
        var logits = classifier.forward(features);
        return nn.functional.cross_entropy(logits, labels, label_smoothing: options.LabelSmoothing).MoveToOuterDisposeScope();
    }

    /// <summary>The encoder at its learning-rate factor, the classifier at the full rate.</summary>
    public override IEnumerable<ParameterGroup> ParameterGroups() =>
        [new ParameterGroup(encoder.parameters().ToList(), options.EncoderLearningRateFactor), new ParameterGroup(classifier.parameters().ToList())];

    /// <summary>The linear classifier on the embedding: [N, E] → logits [N, classes].</summary>
    public Linear Classifier => classifier;

    /// <summary>The classifier's logits [N, classes] for images [N, C, H, W] in [0, 1] (in the mode the method is in).</summary>
    public Tensor Logits(Tensor images) => classifier.forward(encoder.Embed(images));
}
