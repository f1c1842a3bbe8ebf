using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Settings of <see cref="Ijepa"/>: I-JEPA's recipe (facebookresearch/ijepa <c>configs/in1k_vith14_ep300.yaml</c>; lightly
/// <c>examples/pytorch/ijepa.py</c>) with the predictor narrowed for small images on a CPU (I-JEPA: 12 blocks of width 384;
/// here 2 of 64).
/// </summary>
public sealed class IjepaOptions : MethodOptions
{
    /// <summary>M, the target blocks whose representations are predicted per image. Default 4.</summary>
    public int TargetBlocks { get; set; } = 4;

    /// <summary>Lower end of each target block's area fraction. Default 0.15.</summary>
    public double TargetScaleMin { get; set; } = 0.15;

    /// <summary>Upper end of each target block's area fraction. Default 0.2.</summary>
    public double TargetScaleMax { get; set; } = 0.2;

    /// <summary>Lower end of the context block's area fraction (before the targets are removed). Default 0.85.</summary>
    public double ContextScaleMin { get; set; } = 0.85;

    /// <summary>Token width of the predictor. Default 64.</summary>
    public int PredictorDimension { get; set; } = 64;

    /// <summary>Transformer blocks of the predictor. Default 2.</summary>
    public int PredictorDepth { get; set; } = 2;

    /// <summary>Attention heads of the predictor's blocks (must divide <see cref="PredictorDimension"/>). Default 4.</summary>
    public int PredictorHeads { get; set; } = 4;

    /// <summary>τ_base of the target encoder's moving average; τ rises to 1 along a cosine over training (I-JEPA: linearly). Default 0.996.</summary>
    public double BaseMomentum { get; set; } = 0.996;

    /// <summary>Lower end of the random crop's area fraction (I-JEPA: 0.3; crop and flip only). Default 0.3.</summary>
    public double CropScaleMin { get; set; } = 0.3;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Ijepa(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Range(TargetBlocks, 1, 16, nameof(TargetBlocks));
        Range(TargetScaleMin, 1e-3, 1, nameof(TargetScaleMin));
        Range(TargetScaleMax, TargetScaleMin, 1, nameof(TargetScaleMax));
        Range(ContextScaleMin, 1e-3, 1, nameof(ContextScaleMin));
        Positive(PredictorDimension, nameof(PredictorDimension));
        Range(PredictorDepth, 1, 64, nameof(PredictorDepth));
        Positive(PredictorHeads, nameof(PredictorHeads));
        if (PredictorDimension % PredictorHeads != 0)
            throw new ArgumentOutOfRangeException(nameof(PredictorHeads), PredictorHeads, $"{nameof(PredictorHeads)} must divide {nameof(PredictorDimension)} ({PredictorDimension}).");
        Range(BaseMomentum, 0, 1, nameof(BaseMomentum));
        Range(CropScaleMin, 1e-3, 1, nameof(CropScaleMin));
    }

    /// <summary>The multi-block masking these settings describe (target aspect 0.75–1.5, context scale up to 1, as I-JEPA).</summary>
    public BlockMasking Masking() => new()
    {
        TargetBlocks = TargetBlocks, TargetScale = (TargetScaleMin, TargetScaleMax), ContextScale = (ContextScaleMin, 1.0),
    };
}

/// <summary>
/// I-JEPA (Assran et al. 2023): joint-embedding predictive learning. Each view is cut by multi-block masking
/// (<see cref="BlockMasking"/>) into one context block and <see cref="IjepaOptions.TargetBlocks"/> target blocks; the
/// trained ViT encodes only the context patches (<see cref="VisionTransformer.EncodeVisible"/>), its moving average (τ
/// cosine from 0.996 to 1) encodes every patch, and the narrow <see cref="IjepaPredictor"/> predicts the target encoder's
/// layer-normed tokens at each target block from the context (<see cref="IjepaLoss"/>). No pixels are reconstructed and
/// no augmentation beyond crop and flip is needed. ViT encoders only. The trained encoder is what is exported and probed
/// (its class token, which the predictor reads as a context token); the predictor and target encoder are kept in the checkpoint.
/// </summary>
public sealed class Ijepa : PretrainingMethod
{
    private readonly VisionTransformer encoder;
    private readonly VisionTransformer targetEncoder;
    private readonly IjepaPredictor predictor;
    private readonly ViewAugmenter views;
    private readonly BlockMasking masking;
    private readonly MomentumTarget target;
    private readonly IjepaOptions options;

    /// <summary>I-JEPA around the Vision Transformer <paramref name="encoder"/>; throws for any other encoder.</summary>
    public Ijepa(ImageEncoder encoder, IjepaOptions options, MethodSetup setup) : base(nameof(Ijepa), encoder, options)
    {
        this.encoder = encoder as VisionTransformer
            ?? throw new ArgumentException($"I-JEPA encodes only the context patches, so it needs a Vision Transformer encoder (VitTiny, VitSmall); got a {encoder.Options.Architecture} encoder.", nameof(encoder));
        this.options = options;
        var grid = encoder.Options.ImageSize / encoder.Options.PatchSize;
        targetEncoder = new VisionTransformer(encoder.Options);
        predictor = new IjepaPredictor(encoder.OutputDimension, grid * grid, options.PredictorDimension, options.PredictorDepth, options.PredictorHeads);
        views = new ViewAugmenter(setup.Views.CropAndFlipOnly(options.CropScaleMin));
        masking = options.Masking();
        RegisterComponents();
        target = new MomentumTarget((encoder, targetEncoder));
    }

    /// <summary>The current τ of the target encoder's moving average.</summary>
    public double Momentum { get; private set; }

    /// <inheritdoc/>
    public override int ViewsPerImage => 1;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var view = views.Augment(images, context.Generator);
        context.Mark("views");
        var (prediction, targets) = Predict(view, context.Generator);
        context.Mark("encoder");
        return IjepaLoss.Compute(prediction, targets).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One masked prediction on <paramref name="images"/> [N, C, H, W] with masks drawn from <paramref name="generator"/>:
    /// the predictor's tokens of every target block and the target encoder's tokens there (before the layer norm), both
    /// [M·N, L_tgt, D], block-major.
    /// </summary>
    public (Tensor Prediction, Tensor Target) Predict(Tensor images, Generator generator)
    {
        using var scope = NewDisposeScope();
        var patch = encoder.Options.PatchSize;
        var (rows, columns) = ((int)(images.shape[2] / patch), (int)(images.shape[3] / patch));
        var mask = masking.Sample((int)images.shape[0], rows, columns, generator, images.device);
        var prediction = predictor.forward(encoder.EncodeVisible(images, mask.Context), mask.Context, mask.Targets);
        Tensor targets;
        using (no_grad())
        {
            var tokens = targetEncoder.Tokens(images);
            var patches = tokens.narrow(1, 1, tokens.shape[1] - 1).repeat(options.TargetBlocks, 1, 1);
            targets = patches.gather(1, mask.Targets.unsqueeze(-1).expand(-1, -1, patches.shape[2]));
        }
        return (prediction.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope());
    }

    /// <summary>Moves the target encoder towards the trained one with τ from the cosine schedule.</summary>
    public override void AfterStep(StepContext context)
    {
        Momentum = MomentumTarget.Tau(options.BaseMomentum, context.Progress);
        target.Update(Momentum);
    }

    /// <summary>The context encoder and the predictor; the target encoder is not trained.</summary>
    public override IEnumerable<ParameterGroup> ParameterGroups() => [new ParameterGroup(encoder.parameters().Concat(predictor.parameters()).ToList())];
}
