using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Methods;

/// <summary>What the images are paired with in CLIP-style training.</summary>
public enum Pairing
{
    /// <summary>A caption per image (<see cref="TextPairs"/>), embedded by a <see cref="TextTower"/>.</summary>
    Text,

    /// <summary>A second image per image (<see cref="ImagePairs"/>: another camera or source), embedded by a second encoder.</summary>
    Image,
}

/// <summary>Settings of <see cref="Clip"/>.</summary>
public sealed class ClipOptions : MethodOptions
{
    /// <summary>What each image is paired with; null takes it from the data's <see cref="ImageStore.Pairs"/> (and the checkpoint records it). Default null.</summary>
    public Pairing? Pairing { get; set; }

    /// <summary>P, the size of the joint embedding space both towers project into. Default 128.</summary>
    public int EmbeddingDimension { get; set; } = 128;

    /// <summary>Hidden units of the text tower. Default 512.</summary>
    public int TextHiddenDimension { get; set; } = 512;

    /// <summary>Hash bits of the caption features (2^bits slots; <see cref="TextFeaturization"/>). Default 10.</summary>
    public int TextBits { get; set; } = TextFeaturization.DefaultBits;

    /// <summary>The temperature training starts from (the logit scale is learned). Default 0.07, CLIP's.</summary>
    public double InitialTemperature { get; set; } = ClipLoss.DefaultTemperature;

    /// <summary>The clamp on the learned logit scale (1 / temperature). Default 100, CLIP's.</summary>
    public double MaxLogitScale { get; set; } = ClipLoss.DefaultMaxLogitScale;

    /// <summary>Learn the temperature; false keeps <see cref="InitialTemperature"/>. Default true.</summary>
    public bool LearnTemperature { get; set; } = true;

    /// <summary>Channels of the second images (image pairing); 0 takes the data's. Default 0.</summary>
    public int PairedChannels { get; set; }

    /// <summary>Height of the second images (image pairing); 0 takes the data's. Default 0.</summary>
    public int PairedHeight { get; set; }

    /// <summary>Width of the second images (image pairing); 0 takes the data's. Default 0.</summary>
    public int PairedWidth { get; set; }

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup)
    {
        var resolved = (ClipOptions)Clone();
        switch (setup.Pairs)
        {
            case TextPairs text:
                if (Pairing == Methods.Pairing.Image) throw new ArgumentException("The CLIP run pairs images with images, but the data pairs them with captions.");
                if (text.Bits != TextBits)
                    throw new ArgumentException($"The captions were featurized with {text.Bits} hash bits; the CLIP run's TextBits is {TextBits}.");
                resolved.Pairing = Methods.Pairing.Text;
                break;
            case ImagePairs image:
                if (Pairing == Methods.Pairing.Text) throw new ArgumentException("The CLIP run pairs images with captions, but the data pairs them with images.");
                resolved.Pairing = Methods.Pairing.Image;
                resolved.PairedChannels = image.Images.Channels;
                resolved.PairedHeight = image.Images.Height;
                resolved.PairedWidth = image.Images.Width;
                break;
            case null when Pairing is null:
                throw new ArgumentException("CLIP-style training needs a caption or a second image for every image (ImageStore.WithPairs; the CLI's --captions or --paired-data).");
        }
        return new Clip(encoder, resolved, setup.Views);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(EmbeddingDimension, nameof(EmbeddingDimension));
        Positive(TextHiddenDimension, nameof(TextHiddenDimension));
        Range(TextBits, 1, 20, nameof(TextBits));
        Range(MaxLogitScale, 1, 1e4, nameof(MaxLogitScale));
        Range(InitialTemperature, 1 / MaxLogitScale, 1, nameof(InitialTemperature));
        if (PairedChannels is not (0 or 1 or 3)) throw new ArgumentOutOfRangeException(nameof(PairedChannels), PairedChannels, "PairedChannels must be 0 (from the data), 1 or 3.");
        Range(PairedHeight, 0, 4096, nameof(PairedHeight));
        Range(PairedWidth, 0, 4096, nameof(PairedWidth));
    }
}

/// <summary>
/// CLIP-style paired contrastive training (Radford et al. 2021): two towers, one per input — the image encoder with a
/// linear projection, and a <see cref="TextTower"/> for captions or a second encoder with its own projection for a
/// second image — trained with the symmetric InfoNCE of <see cref="ClipLoss"/> over the batch's pairs and a learned,
/// clamped temperature. The images get the run's views; second images get the same recipe at their size; captions are
/// used as they are. The image encoder is the one kept and exported; the joint space serves zero-shot classification
/// (<see cref="Stages.ZeroShotEstimator"/>) and text-to-image retrieval.
/// </summary>
public sealed class Clip : PretrainingMethod, IEmbeddingObjective
{
    private readonly ClipOptions options;
    private readonly ViewAugmenter views;
    private readonly ViewAugmenter? pairedViews;
    private (long[] Image, long[] Paired) rowShapes = ([], []);

    /// <summary>The towers for <paramref name="options"/>, whose <see cref="ClipOptions.Pairing"/> must be resolved.</summary>
    public Clip(ImageEncoder encoder, ClipOptions options, AugmentationOptions views) : base(nameof(Clip), encoder, options)
    {
        this.options = options;
        Pairing = options.Pairing ?? throw new ArgumentException("ClipOptions.Pairing must be resolved before the towers are built.", nameof(options));
        this.views = new ViewAugmenter(views);
        ImageProjection = nn.Sequential(("proj", nn.Linear(encoder.OutputDimension, options.EmbeddingDimension, hasBias: false)));
        if (Pairing == Methods.Pairing.Text)
            TextTower = new TextTower(1 << options.TextBits, options.TextHiddenDimension, options.EmbeddingDimension);
        else
        {
            var pairedShape = encoder.Options.Clone();
            pairedShape.InputChannels = options.PairedChannels;
            pairedShape.Mean = [.. Enumerable.Repeat(pairedShape.Mean[0], options.PairedChannels)];
            pairedShape.Std = [.. Enumerable.Repeat(pairedShape.Std[0], options.PairedChannels)];
            PairedEncoder = ImageEncoder.Create(pairedShape);
            PairedProjection = nn.Sequential(("proj", nn.Linear(PairedEncoder.OutputDimension, options.EmbeddingDimension, hasBias: false)));
            pairedViews = new ViewAugmenter(AugmentationOptions.ForImageSize(options.PairedHeight, options.PairedWidth));
        }
        register_module("encoder", encoder);
        register_module("image_projection", ImageProjection);
        if (TextTower is not null) register_module("text_tower", TextTower);
        if (PairedEncoder is not null) register_module("paired_encoder", PairedEncoder);
        if (PairedProjection is not null) register_module("paired_projection", PairedProjection);
        register_parameter("log_scale", nn.Parameter(tensor((float)ClipLoss.LogScale(options.InitialTemperature)), requires_grad: options.LearnTemperature));
    }

    /// <summary>What the images are paired with.</summary>
    public Pairing Pairing { get; }

    // Looked up by name: moving the module to another type or device replaces the registered tensor.
    private Parameter LogScaleParameter => get_parameter("log_scale")!;

    /// <summary>The image tower's projection into the joint space, [N, D] → [N, P].</summary>
    public Sequential ImageProjection { get; }

    /// <summary>The caption tower (text pairing), [N, T] → [N, P]; null for image pairing.</summary>
    public TextTower? TextTower { get; }

    /// <summary>The second images' encoder (image pairing); null for text pairing.</summary>
    public ImageEncoder? PairedEncoder { get; }

    /// <summary>The second images' projection into the joint space (image pairing); null for text pairing.</summary>
    public Sequential? PairedProjection { get; }

    /// <summary>The learned logit scale, 1 / temperature.</summary>
    public double LogitScale => LogScaleParameter.detach().exp().to_type(ScalarType.Float64).item<double>();

    /// <inheritdoc/>
    public override bool RequiresPairs => true;

    /// <inheritdoc/>
    public override int ViewsPerImage => Pairing == Methods.Pairing.Image ? 2 : 1;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context) => IEmbeddingObjective.WholeBatchLoss(this, images, context);

    /// <inheritdoc/>
    public bool ExactAcrossRanks => true;

    /// <summary>
    /// One row per pair, [B, C·H·W + F]: the image's view, flattened, then its caption's features [T] or its second
    /// image's view, flattened (F values) — so that gradient caching's chunks of rows keep each pair together.
    /// </summary>
    public Tensor Views(Tensor images, StepContext context)
    {
        var paired = context.Pairs ?? throw new ArgumentException("CLIP-style training needs the batch's captions or second images.", nameof(context));
        var image = views.Augment(images, context.Generator);
        if (pairedViews is not null) paired = pairedViews.Augment(paired.to(images.dtype), context.Generator);
        context.Mark("views");
        rowShapes = (image.shape[1..], paired.shape[1..]);
        return cat(new[] { image.flatten(1), paired.to(image.dtype).flatten(1) }, 1);
    }

    /// <summary>Both towers' outputs [rows, 2P] for rows of <see cref="Views"/>' latest output: the image's P values, then its pair's.</summary>
    public Tensor Embed(Tensor rows)
    {
        var imageSize = rowShapes.Image.Aggregate(1L, (a, b) => a * b);
        var image = rows[.., ..(int)imageSize].reshape([-1, .. rowShapes.Image]);
        var paired = rows[.., (int)imageSize..].reshape([-1, .. rowShapes.Paired]);
        return cat(new[] { ImageProjection.forward(Encoder.forward(image)), PairedTower(paired) }, 1);
    }

    /// <summary>CLIP's loss of the towers' outputs [B, 2P] (<see cref="Embed"/>).</summary>
    public Tensor Objective(Tensor embeddings, StepContext context)
    {
        var p = options.EmbeddingDimension;
        return ClipLoss.Compute(embeddings[.., ..p], embeddings[.., p..], LogScaleParameter);
    }

    /// <summary>Keeps the logit scale within its clamp.</summary>
    public override void AfterStep(StepContext context) => ClipLoss.Clamp(LogScaleParameter, options.MaxLogitScale);

    /// <summary>Unit-length joint-space embeddings [N, P] of images [N, C, H, W] in [0, 1] (in the mode the method is in).</summary>
    public Tensor ImageEmbeddings(Tensor images) => F.normalize(ImageProjection.forward(Encoder.forward(images)), dim: 1);

    /// <summary>Unit-length joint-space embeddings [N, P] of captions' features [N, T] (text pairing) or second images [N, C, H, W] in [0, 1].</summary>
    public Tensor PairedEmbeddings(Tensor paired) => F.normalize(PairedTower(paired), dim: 1);

    private Tensor PairedTower(Tensor paired) =>
        TextTower is not null ? TextTower.forward(paired) : PairedProjection!.forward(PairedEncoder!.forward(paired));
}
