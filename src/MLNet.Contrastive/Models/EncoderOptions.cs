namespace MLNet.Contrastive.Models;

/// <summary>Named encoder sizes (<see cref="EncoderOptions.For"/>); docs/methods.md gives their measured cost and accuracy.</summary>
public enum EncoderPreset
{
    /// <summary>Stem 16, stages 32-64-128, one residual block each (0.30 M parameters); D = 128, E = 768. The default.</summary>
    Small,

    /// <summary>Stem 32, stages 64-128-256, two residual blocks each (2.76 M parameters, a CIFAR ResNet-18 without its last stage); D = 256, E = 1,536.</summary>
    Base,

    /// <summary>
    /// torchvision's ResNet-18: stem 64, stages 64-128-256-512 of two basic blocks, the first stage at the stem's
    /// resolution (11.2 M parameters without torchvision's classifier); the embedding is the last stage's global average,
    /// D = E = 512. ImageNet normalisation on RGB. <see cref="Onnx.ImageNetWeights"/> loads ML.NET's ImageNet weights into it.
    /// </summary>
    ResNet18,

    /// <summary>torchvision's ResNet-34: as <see cref="ResNet18"/> with 3-4-6-3 basic blocks (21.3 M parameters); D = E = 512.</summary>
    ResNet34,

    /// <summary>
    /// torchvision's ResNet-50: stem 64, stages 256-512-1024-2048 of 3-4-6-3 bottleneck blocks (23.5 M parameters
    /// without the classifier); D = E = 2,048. ImageNet normalisation on RGB.
    /// </summary>
    ResNet50,

    /// <summary>
    /// ViT-Tiny (DeiT-Ti): 12 pre-norm blocks, width 192, 3 heads, MLP 768 (5.5 M parameters at patch 16); the
    /// embedding is the class token after the last norm, D = E = 192. Patch size from the image size
    /// (<see cref="EncoderOptions.DefaultPatchSize"/>).
    /// </summary>
    VitTiny,

    /// <summary>ViT-Small (DeiT-S, DINO's ViT-S): 12 blocks, width 384, 6 heads, MLP 1,536 (21.7 M parameters at patch 16); D = E = 384.</summary>
    VitSmall,
}

/// <summary>What a Vision Transformer's embedding is made of (<see cref="EncoderOptions.VitPooling"/>).</summary>
public enum VitPooling
{
    /// <summary>The class token after the last norm (DINO's, iBOT's and timm's default).</summary>
    ClassToken,

    /// <summary>
    /// The mean of the patch tokens after the last norm: I-JEPA's and MAE's evaluation readout (their objectives train
    /// the patch tokens; the class token learns little).
    /// </summary>
    MeanPatchTokens,
}

/// <summary>The kind of network an <see cref="EncoderOptions"/> describes.</summary>
public enum EncoderArchitecture
{
    /// <summary>A residual CNN (<see cref="ResNetEncoder"/>): this project's Small and Base encoders and torchvision's ResNets.</summary>
    ResNet,

    /// <summary>A Vision Transformer (<see cref="VisionTransformer"/>).</summary>
    VisionTransformer,
}

/// <summary>Shape of an <see cref="ImageEncoder"/>: a <see cref="ResNetEncoder"/> or a <see cref="VisionTransformer"/>.</summary>
public sealed class EncoderOptions
{
    /// <summary>ResNet or Vision Transformer. Default ResNet; the ResNet settings below are ignored by a ViT and the ViT settings by a ResNet.</summary>
    public EncoderArchitecture Architecture { get; set; }

    /// <summary>ViT: side of the square patches, which must divide the image size. Default 16.</summary>
    public int PatchSize { get; set; } = 16;

    /// <summary>ViT: the image side its position embeddings are laid out for (other sides interpolate them). Default 224.</summary>
    public int ImageSize { get; set; } = 224;

    /// <summary>ViT: transformer blocks. Default 12.</summary>
    public int Depth { get; set; } = 12;

    /// <summary>ViT: token width, D. Default 192 (ViT-Tiny).</summary>
    public int HiddenDimension { get; set; } = 192;

    /// <summary>ViT: attention heads, which must divide <see cref="HiddenDimension"/>. Default 3.</summary>
    public int Heads { get; set; } = 3;

    /// <summary>ViT: hidden width of each block's MLP. Default 768 (4 × 192).</summary>
    public int MlpDimension { get; set; } = 768;

    /// <summary>ViT: the embedding — the class token or the mean of the patch tokens, after the last norm. Default <see cref="Models.VitPooling.ClassToken"/>.</summary>
    public VitPooling VitPooling { get; set; }

    /// <summary>
    /// The patch size the ViT presets take at <paramref name="imageSize"/> px: 4 up to 32 px (64 tokens at 32 px, as
    /// CIFAR ViT recipes), 8 up to 96 px, 16 above (ImageNet's ViT-*/16); 28 px images take 4 (7 × 7 tokens).
    /// </summary>
    public static int DefaultPatchSize(int imageSize) => imageSize <= 32 ? 4 : imageSize <= 96 ? 8 : 16;

    /// <summary>Input channels: 1 (grayscale) or 3 (RGB). Default 1.</summary>
    public int InputChannels { get; set; } = 1;

    /// <summary>Width of the stem convolution, a multiple of 16. Default 16 (it runs at full resolution, so it dominates the cost).</summary>
    public int StemWidth { get; set; } = 16;

    /// <summary>
    /// Output width of each residual stage, each a multiple of 16; every stage halves the resolution (the first one only with
    /// <see cref="FirstStageStride"/> 2). The last width is the
    /// <see cref="OutputDimension"/> D. Default (32, 64, 128): at 28×28, 28 → 14 → 7 → 4, D = 128.
    /// </summary>
    public int[] StageWidths { get; set; } = [32, 64, 128];

    /// <summary>Residual blocks per stage. Default 1.</summary>
    public int BlocksPerStage { get; set; } = 1;

    /// <summary>
    /// Residual blocks of each stage, one count per <see cref="StageWidths"/> entry, when the stages differ (ML.NET's
    /// ImageNet ResNet-18 has 2-2-2-3); null gives every stage <see cref="BlocksPerStage"/>. Default null.
    /// </summary>
    public int[]? StageBlocks { get; set; }

    /// <summary>The number of residual blocks in stage <paramref name="stage"/>.</summary>
    public int BlocksIn(int stage) => StageBlocks?[stage] ?? BlocksPerStage;

    /// <summary>Whether block <paramref name="block"/> (0-based, over all stages) is the last of its stage.</summary>
    internal bool EndsStage(int block)
    {
        for (var (stage, end) = (0, 0); stage < StageWidths.Length; stage++)
            if ((end += BlocksIn(stage)) - 1 == block) return true;
        return false;
    }

    /// <summary>
    /// Bottleneck blocks (1×1 → 3×3 → 1×1 at a quarter of the stage's width inside, as torchvision's ResNet-50) instead
    /// of basic blocks (two 3×3 convolutions). Default false.
    /// </summary>
    public bool Bottleneck { get; set; }

    /// <summary>
    /// Stride of the first stage's first block: 2 halves the resolution in every stage (this project's Small and Base
    /// encoders); 1 keeps the stem's resolution in the first stage, as torchvision's ResNets do. Default 2.
    /// </summary>
    public int FirstStageStride { get; set; } = 2;

    /// <summary>
    /// Small-image stem (3×3 convolution, stride 1, no pooling; CIFAR-style) when true; ImageNet-style stem
    /// (7×7 stride 2 and 3×3 max-pool, 4× smaller) when false. Default true.
    /// </summary>
    public bool SmallImageStem { get; set; } = true;

    /// <summary>
    /// How many of the last stages make up the embedding (the features that probes, kNN, fine-tuning and the exported ONNX
    /// model use). Default 2: the last two stages, as linear evaluations of small networks concatenate several layers
    /// (DINO's last blocks) because the earlier stage keeps detail the last one pools away.
    /// </summary>
    public int EmbeddingStages { get; set; } = 2;

    /// <summary>
    /// Each embedding stage is averaged over a G × G grid of regions (adaptive average pooling), so the embedding keeps
    /// where in the image a feature is; 1 is global average pooling. Default 2: on full Fashion-MNIST it raised a 10-minute
    /// SimCLR encoder's linear probe from 86.4 % (the last stage's global average) to 89.4 %.
    /// </summary>
    public int EmbeddingGrid { get; set; } = 2;

    /// <summary>Per-channel mean subtracted inside the network (inputs in [0, 1]). Default 0.5.</summary>
    public float[] Mean { get; set; } = [0.5f];

    /// <summary>Per-channel standard deviation divided inside the network. Default 0.5.</summary>
    public float[] Std { get; set; } = [0.5f];

    /// <summary>ImageNet's per-channel mean of RGB pixels in [0, 1], which torchvision and timm weights assume.</summary>
    public static IReadOnlyList<float> ImageNetMean { get; } = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet's per-channel standard deviation of RGB pixels in [0, 1].</summary>
    public static IReadOnlyList<float> ImageNetStd { get; } = [0.229f, 0.224f, 0.225f];

    /// <summary>Stem and stage widths must be multiples of this.</summary>
    public const int ChannelMultiple = 16;

    /// <summary>D, the width of the encoder's forward output (a ResNet's last stage's global average, a ViT's class token), which projection heads take.</summary>
    public int OutputDimension => Architecture == EncoderArchitecture.VisionTransformer ? HiddenDimension : StageWidths[^1];

    /// <summary>
    /// E, the embedding's dimension: a ResNet's G² × the widths of the last <see cref="EmbeddingStages"/> stages (768 by
    /// default); a ViT's class token, D.
    /// </summary>
    public int EmbeddingDimension => Architecture == EncoderArchitecture.VisionTransformer
        ? HiddenDimension
        : EmbeddingGrid * EmbeddingGrid * StageWidths.TakeLast(EmbeddingStages).Sum();

    /// <summary>
    /// One line that names the network and its input normalisation, as checkpoints' reports and exported models record it:
    /// "ResNet: stem 64 (ImageNet 7×7 stem), stages 256-512-1024-2048 of 3-4-6-3 bottleneck blocks; 2048-d embedding; RGB normalised by mean 0.485/0.456/0.406, std 0.229/0.224/0.225".
    /// </summary>
    public string Describe()
    {
        static string Values(IEnumerable<float> values) => string.Join("/", values.Select(v => v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)));
        var network = Architecture == EncoderArchitecture.VisionTransformer
            ? $"ViT: patch {PatchSize} (position embeddings for {ImageSize} px), {Depth} blocks of width {HiddenDimension}, {Heads} heads, MLP {MlpDimension}" +
              (VitPooling == VitPooling.MeanPatchTokens ? ", mean of the patch tokens" : "")
            : $"ResNet: stem {StemWidth} ({(SmallImageStem ? "small-image 3×3 stem" : "ImageNet 7×7 stem")}), stages {string.Join("-", StageWidths)} of " +
              $"{string.Join("-", Enumerable.Range(0, StageWidths.Length).Select(BlocksIn))} {(Bottleneck ? "bottleneck" : "basic")} blocks";
        return $"{network}; {EmbeddingDimension}-d embedding; {(InputChannels == 3 ? "RGB" : "grayscale")} normalised by mean {Values(Mean)}, std {Values(Std)}";
    }

    /// <summary>A copy with its own arrays.</summary>
    public EncoderOptions Clone()
    {
        var copy = (EncoderOptions)MemberwiseClone();
        (copy.StageWidths, copy.Mean, copy.Std, copy.StageBlocks) = ([.. StageWidths], [.. Mean], [.. Std], StageBlocks is null ? null : [.. StageBlocks]);
        return copy;
    }

    /// <summary>
    /// The <paramref name="preset"/> encoder for <paramref name="channels"/> channels of <paramref name="size"/> px
    /// images: the small-image stem up to 64 px, the ImageNet-style stem above.
    /// </summary>
    public static EncoderOptions For(int channels, int size, EncoderPreset preset = EncoderPreset.Small)
    {
        var options = new EncoderOptions
        {
            InputChannels = channels,
            SmallImageStem = size <= 64,
            Mean = Enumerable.Repeat(0.5f, channels).ToArray(),
            Std = Enumerable.Repeat(0.5f, channels).ToArray(),
        };
        if (preset is EncoderPreset.VitTiny or EncoderPreset.VitSmall)
        {
            (options.Architecture, options.ImageSize, options.PatchSize, options.Depth) = (EncoderArchitecture.VisionTransformer, size, DefaultPatchSize(size), 12);
            (options.HiddenDimension, options.Heads) = preset == EncoderPreset.VitTiny ? (192, 3) : (384, 6);
            options.MlpDimension = 4 * options.HiddenDimension;
            if (channels == 3) (options.Mean, options.Std) = ([.. ImageNetMean], [.. ImageNetStd]);
        }
        else if (preset == EncoderPreset.Base) (options.StemWidth, options.StageWidths, options.BlocksPerStage) = (32, [64, 128, 256], 2);
        else if (preset is EncoderPreset.ResNet18 or EncoderPreset.ResNet34 or EncoderPreset.ResNet50)
        {
            (options.StemWidth, options.StageWidths, options.BlocksPerStage, options.FirstStageStride) = (64, [64, 128, 256, 512], 2, 1);
            if (preset != EncoderPreset.ResNet18) options.StageBlocks = [3, 4, 6, 3];
            if (preset == EncoderPreset.ResNet50) (options.Bottleneck, options.StageWidths) = (true, [256, 512, 1024, 2048]);
            (options.EmbeddingStages, options.EmbeddingGrid) = (1, 1);
            if (channels == 3) (options.Mean, options.Std) = ([.. ImageNetMean], [.. ImageNetStd]);
        }
        else if (preset != EncoderPreset.Small) throw new ArgumentOutOfRangeException(nameof(preset), preset, "The encoder presets are Small, Base, ResNet18, ResNet34, ResNet50, VitTiny and VitSmall.");
        return options;
    }

    internal void Validate()
    {
        if (InputChannels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(InputChannels), InputChannels, "Input channels must be 1 or 3.");
        if (Mean.Length != InputChannels || Std.Length != InputChannels)
            throw new ArgumentException($"Mean and Std need one value per input channel ({InputChannels}); got {Mean.Length} and {Std.Length}.");
        if (Std.Any(s => s <= 0)) throw new ArgumentOutOfRangeException(nameof(Std), "Std values must be positive.");
        if (Architecture == EncoderArchitecture.VisionTransformer)
        {
            if (PatchSize <= 0 || ImageSize <= 0 || ImageSize % PatchSize != 0)
                throw new ArgumentOutOfRangeException(nameof(PatchSize), PatchSize, $"The patch size must divide the image size ({ImageSize}).");
            if (Depth <= 0 || MlpDimension <= 0) throw new ArgumentOutOfRangeException(nameof(Depth), "Depth and MLP width must be positive.");
            if (HiddenDimension <= 0 || Heads <= 0 || HiddenDimension % Heads != 0)
                throw new ArgumentOutOfRangeException(nameof(Heads), Heads, $"The heads must divide the token width ({HiddenDimension}).");
            if (!Enum.IsDefined(VitPooling)) throw new ArgumentOutOfRangeException(nameof(VitPooling), VitPooling, "The ViT poolings are ClassToken and MeanPatchTokens.");
            return;
        }
        if (Architecture != EncoderArchitecture.ResNet) throw new ArgumentOutOfRangeException(nameof(Architecture), Architecture, "The architectures are ResNet and VisionTransformer.");
        if (StemWidth <= 0 || StageWidths.Any(w => w <= 0)) throw new ArgumentOutOfRangeException(nameof(StageWidths), "Widths must be positive.");
        // libtorch 2.10's oneDNN convolution returns wrong float32 results on some AVX-512 CPUs when the input
        // channel count is not a multiple of 16 (seen for 20 and 24 channels at batch 256: errors above 1.0).
        if (StageWidths.Prepend(StemWidth).FirstOrDefault(w => w % ChannelMultiple != 0) is var odd and > 0)
            throw new ArgumentOutOfRangeException(nameof(StageWidths), odd,
                $"Encoder widths must be multiples of {ChannelMultiple}: libtorch 2.10's oneDNN convolutions give wrong results on some CPUs for other channel counts.");
        if (Bottleneck && StageWidths.FirstOrDefault(w => w / ResidualBlock.Expansion % ChannelMultiple != 0) is var thin and > 0)
            throw new ArgumentOutOfRangeException(nameof(StageWidths), thin,
                $"A bottleneck stage's width must be a multiple of {ResidualBlock.Expansion * ChannelMultiple} (its inner width, a quarter of it, a multiple of {ChannelMultiple}).");
        if (StageWidths.Length == 0) throw new ArgumentException("The encoder needs at least one residual stage.", nameof(StageWidths));
        if (EmbeddingStages < 1 || EmbeddingStages > StageWidths.Length)
            throw new ArgumentOutOfRangeException(nameof(EmbeddingStages), EmbeddingStages, $"Embedding stages must be between 1 and the number of stages ({StageWidths.Length}).");
        if (EmbeddingGrid is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(EmbeddingGrid), EmbeddingGrid, "The embedding grid must be 1 (global average) to 4.");
        if (FirstStageStride is not (1 or 2)) throw new ArgumentOutOfRangeException(nameof(FirstStageStride), FirstStageStride, "The first stage's stride must be 1 or 2.");
        if (BlocksPerStage <= 0) throw new ArgumentOutOfRangeException(nameof(BlocksPerStage), BlocksPerStage, "Blocks per stage must be positive.");
        if (StageBlocks is not null && (StageBlocks.Length != StageWidths.Length || StageBlocks.Any(b => b <= 0)))
            throw new ArgumentException($"StageBlocks needs one positive count per stage ({StageWidths.Length}); got [{string.Join(", ", StageBlocks)}].", nameof(StageBlocks));
    }
}
