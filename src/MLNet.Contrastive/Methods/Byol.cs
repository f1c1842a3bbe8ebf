using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="Byol"/>; defaults sized for small images on a CPU (solo-learn's CIFAR recipe, narrower).</summary>
public sealed class ByolOptions : MethodOptions
{
    /// <summary>Projector hidden size. Default 1024.</summary>
    public int ProjectionHiddenDimension { get; set; } = 1024;

    /// <summary>Projector output size (the predictor's input and output). Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <summary>Predictor hidden size. Default 1024.</summary>
    public int PredictorHiddenDimension { get; set; } = 1024;

    /// <summary>τ_base of the target's moving average; τ rises to 1 along a cosine over training. Default 0.99 (0.996 for long ImageNet runs).</summary>
    public double BaseMomentum { get; set; } = 0.99;

    /// <summary>Multiplies the predictor's learning rate. Default 1.</summary>
    public double PredictorLearningRateFactor { get; set; } = 1;

    /// <summary>
    /// BYOL's asymmetric views: the first view always blurred, the second rarely (0.1) and solarized with this
    /// probability — blur only where the run's recipe blurs at all (not for images of 64 px or less). Default 0.2.
    /// </summary>
    public double SecondViewSolarizeProbability { get; set; } = 0.2;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Byol(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
        Positive(PredictorHiddenDimension, nameof(PredictorHiddenDimension));
        Range(BaseMomentum, 0, 1, nameof(BaseMomentum));
        Positive(PredictorLearningRateFactor, nameof(PredictorLearningRateFactor));
        Range(SecondViewSolarizeProbability, 0, 1, nameof(SecondViewSolarizeProbability));
    }
}

/// <summary>
/// BYOL (Grill et al. 2020): the online encoder → projector → predictor regresses the target encoder → projector's
/// projection of the other view (2 − 2·cos, both view orders summed); the target follows the online network by a
/// moving average whose τ rises from τ_base to 1 along a cosine. No negatives: the predictor and the slowly moving
/// target keep it from collapsing.
/// </summary>
public sealed class Byol : PretrainingMethod
{
    private readonly ImageEncoder encoder;
    private readonly ProjectionHead projector;
    private readonly ProjectionHead predictor;
    private readonly ImageEncoder targetEncoder;
    private readonly ProjectionHead targetProjector;
    private readonly ViewAugmenter firstView, secondView;
    private readonly ByolOptions options;
    private readonly MomentumTarget target;

    /// <summary>BYOL around <paramref name="encoder"/>.</summary>
    public Byol(ImageEncoder encoder, ByolOptions options, MethodSetup setup) : base(nameof(Byol), encoder, options)
    {
        this.encoder = encoder;
        this.options = options;
        projector = new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension);
        predictor = new ProjectionHead(options.ProjectionDimension, options.PredictorHiddenDimension, options.ProjectionDimension);
        targetEncoder = ImageEncoder.Create(encoder.Options);
        targetProjector = new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension);
        var blurs = setup.Views.BlurProbability > 0;
        var first = setup.Views.Clone();
        (first.BlurProbability, first.SolarizeProbability) = (blurs ? 1.0 : 0, 0);
        var second = setup.Views.Clone();
        (second.BlurProbability, second.SolarizeProbability) = (blurs ? 0.1 : 0, options.SecondViewSolarizeProbability);
        (firstView, secondView) = (new ViewAugmenter(first), new ViewAugmenter(second));
        RegisterComponents();
        target = new MomentumTarget((encoder, targetEncoder), (projector, targetProjector));
    }

    /// <inheritdoc/>
    public override int ViewsPerImage => 2;

    /// <summary>The current τ of the target's moving average.</summary>
    public double Momentum { get; private set; }

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var n = (int)images.shape[0];
        var views = TwoViews(images, firstView, secondView, context);
        var features = encoder.forward(views);
        context.Mark("encoder");
        var p = predictor.forward(projector.forward(features));
        Tensor z;
        using (no_grad()) z = targetProjector.forward(targetEncoder.forward(views));
        return (ByolLoss.Compute(p[..n], z[n..]) + ByolLoss.Compute(p[n..], z[..n])).MoveToOuterDisposeScope();
    }

    /// <summary>Moves the target towards the online network with τ from the cosine schedule.</summary>
    public override void AfterStep(StepContext context)
    {
        Momentum = MomentumTarget.Tau(options.BaseMomentum, context.Progress);
        target.Update(Momentum);
    }

    /// <summary>Encoder and projector; the predictor with its own learning-rate factor; the target is not trained.</summary>
    public override IEnumerable<ParameterGroup> ParameterGroups() =>
    [
        new ParameterGroup(encoder.parameters().Concat(projector.parameters()).ToList()),
        new ParameterGroup(predictor.parameters().ToList(), options.PredictorLearningRateFactor),
    ];
}
