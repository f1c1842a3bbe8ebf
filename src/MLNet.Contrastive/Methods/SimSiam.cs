using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="SimSiam"/>; defaults follow the paper's CIFAR variant, narrower.</summary>
public sealed class SimSiamOptions : MethodOptions
{
    /// <summary>Projector hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Projector output size (batch-normalised). Default 512.</summary>
    public int ProjectionDimension { get; set; } = 512;

    /// <summary>Predictor bottleneck (the paper uses a quarter of the projection size). Default 128.</summary>
    public int PredictorHiddenDimension { get; set; } = 128;

    /// <summary>Keep the predictor at the peak learning rate instead of decaying it (the paper finds this helps). Default true.</summary>
    public bool FixedPredictorLearningRate { get; set; } = true;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new SimSiam(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
        Positive(PredictorHiddenDimension, nameof(PredictorHiddenDimension));
    }
}

/// <summary>
/// SimSiam (Chen &amp; He 2021): encoder → projector (with a batch-normalised output) → bottleneck predictor; each
/// view's prediction matches the other view's projection under a stop-gradient, (D(p1, z2) + D(p2, z1)) / 2 with
/// D = −cos. No negatives and no momentum target: the stop-gradient alone prevents the trivial constant solution,
/// and when it does not (too high a learning rate, no predictor) the collapse shows in the monitors as the std of
/// the normalised embeddings falling towards 0 and the effective rank towards 1, while the loss reaches −1.
/// </summary>
public sealed class SimSiam : PretrainingMethod
{
    private readonly ImageEncoder encoder;
    private readonly ProjectionHead projector;
    private readonly ProjectionHead predictor;
    private readonly ViewAugmenter views;
    private readonly SimSiamOptions options;

    /// <summary>SimSiam around <paramref name="encoder"/>.</summary>
    public SimSiam(ImageEncoder encoder, SimSiamOptions options, MethodSetup setup) : base(nameof(SimSiam), encoder, options)
    {
        this.encoder = encoder;
        this.options = options;
        projector = new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension, normalizeOutput: true);
        predictor = new ProjectionHead(options.ProjectionDimension, options.PredictorHiddenDimension, options.ProjectionDimension);
        views = new ViewAugmenter(setup.Views);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int ViewsPerImage => 2;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var n = (int)images.shape[0];
        var features = encoder.forward(TwoViews(images, views, views, context));
        context.Mark("encoder");
        var z = projector.forward(features);
        var p = predictor.forward(z);
        return ((SimSiamLoss.Compute(p[..n], z[n..]) + SimSiamLoss.Compute(p[n..], z[..n])) / 2).MoveToOuterDisposeScope();
    }

    /// <summary>Encoder and projector follow the schedule; the predictor keeps the peak learning rate when <see cref="SimSiamOptions.FixedPredictorLearningRate"/>.</summary>
    public override IEnumerable<ParameterGroup> ParameterGroups() =>
    [
        new ParameterGroup(encoder.parameters().Concat(projector.parameters()).ToList()),
        new ParameterGroup(predictor.parameters().ToList(), FixedLearningRate: options.FixedPredictorLearningRate),
    ];
}
