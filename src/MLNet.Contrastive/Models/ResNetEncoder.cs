using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// A ResNet-style CNN: input normalisation, stem, residual stages, then two readouts of the same stages.
/// <see cref="forward"/> gives the last stage's global average, [N, D] with D = <see cref="EncoderOptions.OutputDimension"/>,
/// which the pretraining heads take; <see cref="Embed"/> gives the embedding, [N, E] with E =
/// <see cref="EncoderOptions.EmbeddingDimension"/>: the last stages averaged over a grid of regions and concatenated,
/// which probes, kNN, fine-tuning and the exported ONNX model use. Input [N, C, H, W] float32 in [0, 1].
/// Built only from Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d and additions, which the ONNX exporter handles.
/// </summary>
public sealed class ResNetEncoder : ImageEncoder
{
    private readonly Tensor mean;
    private readonly Tensor std;
    private readonly Sequential stem;
    private readonly ModuleList<ResidualBlock> blocks;

    /// <summary>A randomly initialised encoder of the given shape (validated).</summary>
    public ResNetEncoder(EncoderOptions options) : base(nameof(ResNetEncoder), options)
    {
        if (options.Architecture != EncoderArchitecture.ResNet)
            throw new ArgumentException($"A ResNet encoder cannot take {options.Architecture} options; use ImageEncoder.Create.", nameof(options));
        mean = tensor(options.Mean).view(1, -1, 1, 1);
        std = tensor(options.Std).view(1, -1, 1, 1);
        stem = options.SmallImageStem
            ? Sequential(
                ("conv", Conv2d(options.InputChannels, options.StemWidth, 3, padding: 1, bias: false)),
                ("bn", SyncBatchNorm.TwoD(options.StemWidth)),
                ("relu", ReLU(inplace: true)))
            : Sequential(
                ("conv", Conv2d(options.InputChannels, options.StemWidth, 7, stride: 2, padding: 3, bias: false)),
                ("bn", SyncBatchNorm.TwoD(options.StemWidth)),
                ("relu", ReLU(inplace: true)),
                ("pool", MaxPool2d(3, stride: 2, padding: 1)));
        blocks = new ModuleList<ResidualBlock>();
        var width = options.StemWidth;
        for (var stage = 0; stage < options.StageWidths.Length; stage++)
            for (var i = 0; i < options.BlocksIn(stage); i++)
            {
                var stride = i > 0 ? 1 : stage == 0 ? options.FirstStageStride : 2;
                blocks.Add(new ResidualBlock(width, options.StageWidths[stage], stride, options.Bottleneck));
                width = options.StageWidths[stage];
            }
        register_buffer("mean", mean, persistent: true);
        register_buffer("std", std, persistent: true);
        RegisterComponents();
    }

    internal override Tensor NormalizationMean => mean;
    internal override Tensor NormalizationStd => std;
    internal Sequential Stem => stem;
    internal IEnumerable<ResidualBlock> Blocks => blocks;

    /// <summary>The last stage's global average: [N, C, H, W] → [N, D].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        return StageOutputs(images, 1)[0].mean(new long[] { 2, 3 }).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The embedding: each of the last <see cref="EncoderOptions.EmbeddingStages"/> stages averaged over a G × G grid
    /// (G = <see cref="EncoderOptions.EmbeddingGrid"/>), flattened channel-major and concatenated: [N, C, H, W] → [N, E].
    /// </summary>
    public override Tensor Embed(Tensor images)
    {
        using var scope = NewDisposeScope();
        var grid = Options.EmbeddingGrid;
        var pooled = StageOutputs(images, Options.EmbeddingStages)
            .Select(stage => (grid == 1 ? stage.mean(new long[] { 2, 3 }, keepdim: true) : functional.adaptive_avg_pool2d(stage, new long[] { grid, grid })).flatten(1))
            .ToArray();
        return (pooled.Length == 1 ? pooled[0] : cat(pooled, 1)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    internal override Tensor FeatureMap(Tensor images)
    {
        using var scope = NewDisposeScope();
        return StageOutputs(images, 1)[0].MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The output of the last <paramref name="last"/> residual stages (their last blocks; all stages by default),
    /// [N, width, H', W'] each, in the caller's dispose scope.
    /// </summary>
    internal IReadOnlyList<Tensor> StageOutputs(Tensor images, int? last = null)
    {
        var keepFrom = Options.StageWidths.Length - (last ?? Options.StageWidths.Length);
        Tensor x;
        // Its own scope: at 96 px each of the normalisation's temporaries is as large as the batch of views.
        using (NewDisposeScope()) x = ChannelsLast((images - mean) / std).MoveToOuterDisposeScope();
        x = Consumed(x, stem.forward(x));
        // With one input channel NCHW and NHWC are the same bytes, and libtorch keeps the stem's output NCHW.
        if (x.is_contiguous()) x = ChannelsLast(x);
        var stages = new List<Tensor>();
        var (index, stage) = (0, 0);
        foreach (var block in blocks)
        {
            var input = x;
            x = block.forward(x);
            // Each block's input is let go as soon as the block has run, unless it is a stage output asked for: without
            // a graph (the first pass of gradient caching, embedding for probes and reports) the caller's scope would
            // otherwise hold every block's output of the whole pass (25 MB a view at 224 px through ResNet-50),
            // and with a graph autograd keeps what backward needs anyway.
            if (stages.Count == 0 || !ReferenceEquals(stages[^1], input)) input.Dispose();
            if (Options.EndsStage(index++) && stage++ >= keepFrom) stages.Add(x);
        }
        return stages;
    }

    /// <summary><paramref name="next"/>, computed from <paramref name="previous"/>, which is disposed (see <see cref="StageOutputs"/>).</summary>
    private static Tensor Consumed(Tensor previous, Tensor next)
    {
        previous.Dispose();
        return next;
    }

    /// <summary>
    /// The same [N, C, H, W] tensor stored channels-last (NHWC), which the convolutions, batch norms and ReLUs after it
    /// keep. libtorch 2.10's oneDNN convolutions run this network 1.5–1.7× faster (forward and backward) that way than
    /// NCHW on 2 cores here (docs/performance.md); TorchSharp 0.107 has no memory-format argument, so the layout is made
    /// from strides.
    /// </summary>
    internal static Tensor ChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
}

/// <summary>
/// torchvision's residual blocks. Basic (ResNet-18/34): conv3×3 → BN → ReLU → conv3×3 → BN. Bottleneck (ResNet-50 and
/// larger): conv1×1 → BN → ReLU → conv3×3 (the stride) → BN → ReLU → conv1×1 → BN, at a quarter of the output width
/// inside. Plus the input (through a 1×1 conv and BN when the shape changes), then ReLU.
/// [N, in, H, W] → [N, out, H / stride, W / stride]. Field names are torchvision's (conv1, bn1, …, conv3, bn3).
/// </summary>
internal sealed class ResidualBlock : Module<Tensor, Tensor>
{
    /// <summary>A bottleneck block's output width ÷ its inner width (torchvision's <c>Bottleneck.expansion</c>).</summary>
    internal const int Expansion = 4;

    private readonly Conv2d conv1, conv2;
    private readonly SyncBatchNorm bn1, bn2;
    private readonly Conv2d? conv3;
    private readonly SyncBatchNorm? bn3;
    private readonly Sequential? shortcut;

    /// <summary>A block from <paramref name="inChannels"/> to <paramref name="outChannels"/> channels, subsampling by <paramref name="stride"/>.</summary>
    public ResidualBlock(int inChannels, int outChannels, int stride, bool bottleneck = false) : base(nameof(ResidualBlock))
    {
        if (bottleneck)
        {
            var inner = outChannels / Expansion;
            conv1 = Conv2d(inChannels, inner, 1, bias: false);
            bn1 = SyncBatchNorm.TwoD(inner);
            conv2 = Conv2d(inner, inner, 3, stride: stride, padding: 1, bias: false);
            bn2 = SyncBatchNorm.TwoD(inner);
            conv3 = Conv2d(inner, outChannels, 1, bias: false);
            bn3 = SyncBatchNorm.TwoD(outChannels);
        }
        else
        {
            conv1 = Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1, bias: false);
            bn1 = SyncBatchNorm.TwoD(outChannels);
            conv2 = Conv2d(outChannels, outChannels, 3, padding: 1, bias: false);
            bn2 = SyncBatchNorm.TwoD(outChannels);
        }
        if (stride != 1 || inChannels != outChannels)
            shortcut = Sequential(
                ("conv", Conv2d(inChannels, outChannels, 1, stride: stride, bias: false)),
                ("bn", SyncBatchNorm.TwoD(outChannels)));
        RegisterComponents();
    }

    /// <summary>The main path's convolutions with their batch norms, in order (two, or three in a bottleneck); ReLU between them.</summary>
    internal IReadOnlyList<(Conv2d Conv, BatchNorm Norm)> Layers =>
        conv3 is null ? [(conv1, bn1), (conv2, bn2)] : [(conv1, bn1), (conv2, bn2), (conv3, bn3!)];

    internal Sequential? Shortcut => shortcut;

    /// <summary>[N, in, H, W] → [N, out, H / stride, W / stride].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // In place, as torchvision's ResNet does: batch norm's backward needs its input, not its output, so the
        // ReLUs and the addition may overwrite the output instead of keeping one more activation per layer.
        var y = functional.relu(bn1.forward(conv1.forward(x)), inplace: true);
        y = bn2.forward(conv2.forward(y));
        if (conv3 is not null) y = bn3!.forward(conv3.forward(functional.relu(y, inplace: true)));
        y.add_(shortcut is null ? x : shortcut.forward(x));
        return functional.relu(y, inplace: true).MoveToOuterDisposeScope();
    }
}
