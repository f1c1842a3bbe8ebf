using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Settings of <see cref="Supervised"/>: the classifier network's training, declared once for the supervised baseline of
/// pretraining and for fine-tuning (<see cref="Stages.FineTuningTrainer.Options.Network"/>, which starts from
/// <see cref="FineTuning"/>).
/// </summary>
public sealed class SupervisedOptions : MethodOptions
{
    /// <summary>
    /// Fine-tuning's defaults: <see cref="FrozenEncoderFraction"/> 0.1 and <see cref="LabelSmoothing"/> null, which
    /// fine-tuning resolves to 0.1, or 0 with FixMatch; the rest as declared here. A pretrained encoder's settings
    /// (<see cref="EncoderLearningRateFactor"/>, <see cref="FrozenEncoderFraction"/>) do not apply to an encoder trained from scratch.
    /// </summary>
    public static SupervisedOptions FineTuning() => new() { FrozenEncoderFraction = 0.1 };

    /// <summary>Number of classes; 0 takes the count of the training data's labels (and the checkpoint records it). Default 0.</summary>
    public int Classes { get; set; }

    /// <summary>
    /// Label smoothing ε of the cross-entropy (targets 1 − ε + ε/K and ε/K). Null: 0; fine-tuning resolves it to 0.1, or
    /// to 0 with FixMatch (smoothing ε caps the network's confidence near 1 − ε + ε/K, below FixMatch's threshold). Default null.
    /// </summary>
    public double? LabelSmoothing { get; set; }

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

    /// <summary>
    /// Weight λ of FixMatch's term on unlabelled rows (label −1): the class the network gives a crop-and-flip view of such
    /// an image, where its probability reaches <see cref="ConfidenceThreshold"/>, is the target of a view drawn from the
    /// run's self-supervised recipe (<see cref="Objectives.FixMatchLoss"/>). Default 1.
    /// </summary>
    public double UnlabelledWeight { get; set; } = 1;

    /// <summary>FixMatch's confidence threshold τ for an unlabelled image's pseudo-label. Default 0.95 (FixMatch's).</summary>
    public double ConfidenceThreshold { get; set; } = 0.95;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup)
    {
        var resolved = (SupervisedOptions)Clone();
        resolved.Classes = Classes > 0 ? Classes : setup.Classes;
        return new Supervised(encoder, resolved, setup.Views);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        if (Classes is < 0 or 1) throw new ArgumentOutOfRangeException(nameof(Classes), Classes, "Classes must be 0 (from the data) or at least 2.");
        if (LabelSmoothing is { } smoothing && !(smoothing is >= 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(LabelSmoothing), LabelSmoothing, "LabelSmoothing must be in [0, 1).");
        Positive(EncoderLearningRateFactor, nameof(EncoderLearningRateFactor));
        Range(FrozenEncoderFraction, 0, 1, nameof(FrozenEncoderFraction));
        if (!(UnlabelledWeight >= 0 && double.IsFinite(UnlabelledWeight)))
            throw new ArgumentOutOfRangeException(nameof(UnlabelledWeight), UnlabelledWeight, "UnlabelledWeight must be a finite number of at least 0.");
        Range(ConfidenceThreshold, 0, 1, nameof(ConfidenceThreshold));
    }
}

/// <summary>
/// The supervised-from-scratch baseline of the label-efficiency curve: the same encoder and a linear classifier
/// trained with cross-entropy on the labelled images only, with crop-and-flip views (the usual supervised recipe), or
/// with <see cref="SupervisedOptions.StrongViews"/> on the run's self-supervised views. Rows labelled −1 are unlabelled
/// images, trained with FixMatch's term (semi-supervised fine-tuning).
/// </summary>
public sealed class Supervised : PretrainingMethod
{
    private readonly ImageEncoder encoder;
    private readonly Linear classifier;
    private readonly SupervisedOptions options;
    private readonly ViewAugmenter views;
    private readonly ViewAugmenter weakViews = new(AugmentationOptions.CropAndFlip());
    private readonly ViewAugmenter? strongViews;

    /// <summary>
    /// A classifier of <c>options.Classes</c> classes on <paramref name="encoder"/>, trained on crop 0.6–1 and flip, or with
    /// <see cref="SupervisedOptions.StrongViews"/> on <paramref name="runViews"/> (the run's recipe, required then and for
    /// unlabelled rows).
    /// </summary>
    public Supervised(ImageEncoder encoder, SupervisedOptions options, AugmentationOptions? runViews = null) : base(nameof(Supervised), encoder, options)
    {
        if (options.Classes < 2) throw new ArgumentException($"Supervised training needs labelled images of at least 2 classes (a labelled image folder or a labels file); the data has {options.Classes}.", nameof(options));
        this.encoder = encoder;
        this.options = options;
        views = new ViewAugmenter(!options.StrongViews ? AugmentationOptions.CropAndFlip()
            : runViews ?? throw new ArgumentException("StrongViews trains on the run's views; pass them as runViews.", nameof(runViews)));
        strongViews = runViews is null ? null : new ViewAugmenter(runViews);
        classifier = nn.Linear(encoder.EmbeddingDimension, options.Classes);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override bool RequiresLabels => true;

    /// <inheritdoc/>
    public override int ViewsPerImage => 1;

    /// <inheritdoc/>
    /// <remarks>An unlabelled image (label −1) gives two views: the weak one that pseudo-labels it and the strong one that learns.</remarks>
    public override long ViewsInStep(int images, StepContext context) =>
        context.Labels is { ndim: 1 } labels ? images + labels.lt(0).sum().item<long>() : images;

    /// <summary>
    /// Cross-entropy (with <see cref="SupervisedOptions.LabelSmoothing"/>) of the classifier's logits [B, classes] (a linear
    /// layer on the embedding [B, E]) on one crop-and-flip view of each image, against the labels: class indices [B], or a
    /// teacher's class probabilities [B, classes] when distilling. Class index −1 marks an unlabelled image: the loss is
    /// then the labelled rows' mean cross-entropy plus <see cref="SupervisedOptions.UnlabelledWeight"/> times
    /// <see cref="FixMatchLoss"/> over the unlabelled rows (a crop-and-flip view gives the pseudo-label, a view of the
    /// run's recipe learns it; all views in one forward pass, so batch norm sees them together, as in FixMatch). During the
    /// frozen phase the encoder runs in eval mode without gradients.
    /// </summary>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        var labels = context.Labels ?? throw new ArgumentException("Supervised training needs the batch's labels.", nameof(context));
        using var scope = NewDisposeScope();
        var unlabelled = labels.ndim == 1 ? labels.lt(0) : null;
        if (unlabelled is not null && unlabelled.any().item<bool>())
            return SemiSupervisedLoss(images, labels, unlabelled, context).MoveToOuterDisposeScope();
        var x = views.Augment(images, context.Generator);
        context.Mark("views");
        var logits = classifier.forward(Features(x, context));
        return nn.functional.cross_entropy(logits, labels, label_smoothing: options.LabelSmoothing ?? 0).MoveToOuterDisposeScope();
    }

    private Tensor SemiSupervisedLoss(Tensor images, Tensor labels, Tensor unlabelled, StepContext context)
    {
        var strong = strongViews ?? throw new InvalidOperationException("Unlabelled images (label −1) train on the run's views; pass them as runViews.");
        var labelledRows = labels.ge(0).nonzero().squeeze(1);
        var unlabelledRows = unlabelled.nonzero().squeeze(1);
        var (labelledCount, unlabelledCount) = ((int)labelledRows.shape[0], (int)unlabelledRows.shape[0]);
        var unlabelledImages = images.index_select(0, unlabelledRows);
        var x = cat(new[]
        {
            views.Augment(images.index_select(0, labelledRows), context.Generator),
            weakViews.Augment(unlabelledImages, context.Generator),
            strong.Augment(unlabelledImages, context.Generator),
        }, 0);
        context.Mark("views");
        var logits = classifier.forward(Features(x, context));
        var (consistency, _) = FixMatchLoss.Compute(logits[labelledCount..(labelledCount + unlabelledCount)], logits[(labelledCount + unlabelledCount)..],
            options.ConfidenceThreshold);
        var loss = options.UnlabelledWeight * consistency;
        return labelledCount == 0 ? loss
            : loss + nn.functional.cross_entropy(logits[..labelledCount], labels.index_select(0, labelledRows), label_smoothing: options.LabelSmoothing ?? 0);
    }

    /// <summary>The embedding of the views; during the frozen phase in eval mode, without gradients.</summary>
    private Tensor Features(Tensor views, StepContext context)
    {
        var frozen = context.Progress < options.FrozenEncoderFraction;
        encoder.train(training && !frozen);
        using var noGrad = frozen ? no_grad() : null;
        return encoder.Embed(views);
    }

    /// <summary>The encoder at its learning-rate factor, the classifier at the full rate.</summary>
    public override IEnumerable<ParameterGroup> ParameterGroups() =>
        [new ParameterGroup(encoder.parameters().ToList(), options.EncoderLearningRateFactor), new ParameterGroup(classifier.parameters().ToList())];

    /// <summary>The linear classifier on the embedding: [N, E] → logits [N, classes].</summary>
    public Linear Classifier => classifier;

    /// <summary>The classifier's logits [N, classes] for images [N, C, H, W] in [0, 1] (in the mode the method is in).</summary>
    public Tensor Logits(Tensor images) => classifier.forward(encoder.Embed(images));
}
