using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Settings of <see cref="Mae"/>: MAE's recipe (facebookresearch/mae) with the decoder narrowed for small images on a
/// CPU (MAE: 8 blocks of width 512, 16 heads; here 2 of 128, 4 heads).
/// </summary>
public sealed class MaeOptions : MethodOptions
{
    /// <summary>Fraction of each image's patches hidden from the encoder. Default 0.75.</summary>
    public double MaskRatio { get; set; } = 0.75;

    /// <summary>Token width of the decoder. Default 128.</summary>
    public int DecoderDimension { get; set; } = 128;

    /// <summary>Transformer blocks of the decoder. Default 2.</summary>
    public int DecoderDepth { get; set; } = 2;

    /// <summary>Attention heads of the decoder's blocks (must divide <see cref="DecoderDimension"/>). Default 4.</summary>
    public int DecoderHeads { get; set; } = 4;

    /// <summary>Predict each patch's pixels standardised by the patch's own mean and variance (MAE's <c>norm_pix_loss</c>, its better setting). Default true.</summary>
    public bool NormalizePixelTargets { get; set; } = true;

    /// <summary>Lower end of the random crop's area fraction (MAE: 0.2; only crop and flip, no colour changes). Default 0.2.</summary>
    public double CropScaleMin { get; set; } = 0.2;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Mae(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Range(MaskRatio, 0, 0.99, nameof(MaskRatio));
        Positive(DecoderDimension, nameof(DecoderDimension));
        Range(DecoderDepth, 1, 64, nameof(DecoderDepth));
        Positive(DecoderHeads, nameof(DecoderHeads));
        if (DecoderDimension % DecoderHeads != 0)
            throw new ArgumentOutOfRangeException(nameof(DecoderHeads), DecoderHeads, $"{nameof(DecoderHeads)} must divide {nameof(DecoderDimension)} ({DecoderDimension}).");
        Range(CropScaleMin, 1e-3, 1, nameof(CropScaleMin));
    }
}

/// <summary>
/// MAE (He et al. 2022): a random <see cref="MaeOptions.MaskRatio"/> of each view's patches is hidden, the ViT encodes
/// only the visible ones (<see cref="VisionTransformer.EncodeVisible"/>), and a light <see cref="MaeDecoder"/> predicts
/// the pixels of every patch from them and mask tokens; the loss (<see cref="MaeLoss"/>) scores the masked patches only.
/// ViT encoders only. The encoder is what is exported and probed (its class token); the decoder is kept in the checkpoint.
/// </summary>
public sealed class Mae : PretrainingMethod
{
    private readonly VisionTransformer encoder;
    private readonly MaeDecoder decoder;
    private readonly ViewAugmenter views;
    private readonly MaeOptions options;

    /// <summary>MAE around the Vision Transformer <paramref name="encoder"/>; throws for any other encoder.</summary>
    public Mae(ImageEncoder encoder, MaeOptions options, MethodSetup setup) : base(nameof(Mae), encoder, options)
    {
        this.encoder = encoder as VisionTransformer
            ?? throw new ArgumentException($"MAE encodes only the visible patches, so it needs a Vision Transformer encoder (VitTiny, VitSmall); got a {encoder.Options.Architecture} encoder.", nameof(encoder));
        this.options = options;
        var (patch, channels) = (encoder.Options.PatchSize, encoder.Options.InputChannels);
        var grid = encoder.Options.ImageSize / patch;
        decoder = new MaeDecoder(encoder.OutputDimension, grid * grid, patch * patch * channels, options.DecoderDimension, options.DecoderDepth, options.DecoderHeads);
        // MAE's augmentation: random resized crop and flip only.
        views = new ViewAugmenter(setup.Views.CropAndFlipOnly(options.CropScaleMin));
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int ViewsPerImage => 1;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var view = views.Augment(images, context.Generator);
        context.Mark("views");
        var (prediction, target, mask) = Reconstruct(view, context.Generator);
        context.Mark("encoder");
        return MaeLoss.Compute(prediction, target, mask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One masked reconstruction of <paramref name="images"/> [N, C, H, W]: the decoder's pixels of every patch
    /// [N, L, P²·C], the target pixels (per-patch standardised when <see cref="MaeOptions.NormalizePixelTargets"/>) and
    /// the mask [N, L] (1 = hidden), drawn from <paramref name="generator"/>.
    /// </summary>
    public (Tensor Prediction, Tensor Target, Tensor Mask) Reconstruct(Tensor images, Generator generator)
    {
        var patch = encoder.Options.PatchSize;
        var patches = (int)(images.shape[2] / patch * (images.shape[3] / patch));
        var mask = PatchMasking.Random(images.shape[0], patches, options.MaskRatio, generator, images.device);
        return (Reconstruct(images, mask, out var target), target, mask.Mask);
    }

    /// <summary>
    /// The decoder's pixels of every patch [N, L, P²·C] of <paramref name="images"/> [N, C, H, W] with the patches of
    /// <paramref name="mask"/> hidden, and in <paramref name="target"/> the pixels it was trained to predict (per-patch
    /// standardised when <see cref="MaeOptions.NormalizePixelTargets"/>).
    /// </summary>
    public Tensor Reconstruct(Tensor images, PatchMask mask, out Tensor target)
    {
        var pixels = MaeLoss.Patchify(images, encoder.Options.PatchSize);
        target = options.NormalizePixelTargets ? MaeLoss.NormalizePatches(pixels) : pixels;
        return decoder.forward(encoder.EncodeVisible(images, mask.Keep), mask.Restore);
    }

    internal VisionTransformer Vit => encoder;
    internal MaeDecoder Decoder => decoder;
    internal bool NormalizePixelTargets => options.NormalizePixelTargets;

    /// <summary>The fraction of patches hidden in training (<see cref="MaeOptions.MaskRatio"/>).</summary>
    public double MaskRatio => options.MaskRatio;
}
