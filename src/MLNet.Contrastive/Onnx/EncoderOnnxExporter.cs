using Google.Protobuf;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using B = MLNet.Contrastive.Onnx.OnnxGraphBuilder;

namespace MLNet.Contrastive.Onnx;

/// <summary>Names and shape of an exported encoder.</summary>
public sealed class EncoderOnnxOptions
{
    /// <summary>Name of the input, [N, C, H, W] float32 pixel values 0–255 (what ML.NET's ExtractPixels gives). Default "Pixels".</summary>
    public string InputName { get; set; } = "Pixels";

    /// <summary>Name of the output, [N, D] float32. Default "Embedding".</summary>
    public string OutputName { get; set; } = "Embedding";

    /// <summary>Image height the encoder was trained at (the input's H). Default 28.</summary>
    public int Height { get; set; } = 28;

    /// <summary>Image width the encoder was trained at (the input's W). Default 28.</summary>
    public int Width { get; set; } = 28;

    /// <summary>L2-normalise each embedding (LpNormalization). Default false.</summary>
    public bool L2Normalize { get; set; }

    /// <summary>
    /// Output the rows one after another, [N·E], instead of [N, E]: the graph the ML.NET stage applies row by row, whose
    /// output ApplyOnnxModel then types as a plain [E] vector (an [N, E] output becomes [1, E]).
    /// </summary>
    internal bool FlatOutput { get; set; }

    /// <summary>Export <see cref="ResNetEncoder.forward"/> (the last stage's global average, [N, D]) instead of the embedding: what heads and projections take.</summary>
    internal bool PooledOutput { get; set; }

    /// <summary>Layers appended after the encoder's output (a tower's projection, a zero-shot classifier): value and width in, value and width out.</summary>
    internal Func<OnnxGraphBuilder, string, long, (string Value, long Dimension)>? Tail { get; set; }
}

/// <summary>
/// Exports an <see cref="ImageEncoder"/>'s embedding (<see cref="ImageEncoder.Embed"/>) to ONNX (opset 17, IR version 8).
/// A ResNet (<see cref="ResNetEncoder"/>):
/// the input scaling and normalisation, convolutions with their batch norms folded in, ReLU, max pooling, residual
/// additions, each embedding stage averaged over its grid (AveragePool or GlobalAveragePool) and flattened, their
/// concatenation; a ViT: <see cref="VisionTransformerGraph"/>; then optional L2 normalisation. Input [N, C, H, W] with a symbolic N, pixel values 0–255; output [N, E].
/// </summary>
public static class EncoderOnnxExporter
{
    /// <summary>The ONNX operator set the graph uses.</summary>
    public const int Opset = 17;
    /// <summary>The ONNX IR version of the file.</summary>
    public const int IrVersion = 8;
    private const float PixelRange = 255f;

    /// <summary>Writes the ONNX file (through a temporary file and a rename).</summary>
    public static void Export(ImageEncoder encoder, string path, EncoderOnnxOptions? options = null)
    {
        var model = ToModel(encoder, options ?? new EncoderOnnxOptions());
        AtomicFile.WriteAllBytes(path, model.ToByteArray());
    }

    /// <summary>The ONNX model of the encoder in eval mode (batch norms use their running statistics).</summary>
    public static ModelProto ToModel(ImageEncoder encoder, EncoderOnnxOptions options)
    {
        if (options.Height <= 0 || options.Width <= 0) throw new ArgumentOutOfRangeException(nameof(options), "Height and Width must be positive.");
        using var pause = CollectionPause.Begin();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        CheckFinite(encoder, "encoder");
        var builder = new B("encoder");
        var channels = encoder.Options.InputChannels;
        var graph = builder.Graph;
        graph.Input.Add(B.FloatTensor(options.InputName, (null, "N"), (channels, null), (options.Height, null), (options.Width, null)));

        // (x / 255 − mean) / std as one multiply and one add per channel.
        var std = encoder.NormalizationStd.cpu().data<float>().ToArray();
        var mean = encoder.NormalizationMean.cpu().data<float>().ToArray();
        var x = builder.Node("Mul", [options.InputName, builder.Initializer("scale", std.Select(s => 1 / (PixelRange * s)).ToArray(), 1, channels, 1, 1)]);
        x = builder.Node("Add", [x, builder.Initializer("shift", mean.Zip(std, (m, s) => -m / s).ToArray(), 1, channels, 1, 1)]);

        long dimension;
        if (encoder is VisionTransformer vit)
        {
            // Forward and the embedding are the same class token.
            x = VisionTransformerGraph.ClassToken(builder, vit, x, options.Height, options.Width);
            dimension = vit.OutputDimension;
        }
        else (x, dimension) = ResNet(builder, (ResNetEncoder)encoder, x, options);
        if (options.Tail is { } tail) (x, dimension) = tail(builder, x, dimension);
        Output(builder, x, dimension, options.OutputName, options.L2Normalize, options.FlatOutput);
        return Model(graph, $"Image encoder ({encoder.Options.Describe()}): {channels}×{options.Height}×{options.Width} pixels (0–255) → {dimension}-d output");
    }

    /// <summary>A ResNet's stem, blocks and readout: [N, C, H, W] normalised pixels → its embedding, or its pooled output.</summary>
    private static (string Value, long Dimension) ResNet(B builder, ResNetEncoder encoder, string x, EncoderOnnxOptions options)
    {
        x = Sequence(builder, encoder.Stem, "stem", x);
        var stages = new List<string>();
        var index = 0;
        foreach (var block in encoder.Blocks)
        {
            x = Residual(builder, block, $"blocks.{index}", x);
            if (encoder.Options.EndsStage(index++)) stages.Add(x);
        }
        if (options.PooledOutput)
            return (builder.Node("Flatten", [builder.Node("GlobalAveragePool", [stages[^1]])], null, B.Int("axis", 1)), encoder.OutputDimension);
        var sizes = StageSizes(encoder, options);
        var pooled = stages.Zip(sizes).TakeLast(encoder.Options.EmbeddingStages)
            .Select(stage => builder.Node("Flatten", [GridAverage(builder, stage.First, stage.Second, encoder.Options.EmbeddingGrid)], null, B.Int("axis", 1)))
            .ToList();
        return (pooled.Count == 1 ? pooled[0] : builder.Node("Concat", [.. pooled], null, B.Int("axis", 1)), encoder.EmbeddingDimension);
    }

    /// <summary>Names the graph's output: [N, E], or [N·E] rows one after another (<see cref="EncoderOnnxOptions.FlatOutput"/>), optionally L2-normalised first.</summary>
    internal static void Output(B builder, string value, long dimension, string name, bool l2Normalize, bool flat)
    {
        if (l2Normalize) value = builder.Node("LpNormalization", [value], null, B.Int("axis", 1), B.Int("p", 2));
        if (flat)
        {
            builder.Node("Reshape", [value, builder.Int64Initializer("rows", [-1])], name);
            builder.Graph.Output.Add(B.FloatTensor(name, (null, "NE")));
        }
        else
        {
            // The last node's output takes the name (an Identity only when the value is not a node's output).
            if (builder.Graph.Node.LastOrDefault(n => n.Output[0] == value) is { } producer) producer.Output[0] = name;
            else builder.Node("Identity", [value], name);
            builder.Graph.Output.Add(B.FloatTensor(name, (null, "N"), (dimension, null)));
        }
    }

    /// <summary>The model around <paramref name="graph"/>: IR version, opset, producer.</summary>
    internal static ModelProto Model(GraphProto graph, string description)
    {
        var model = new ModelProto
        {
            IrVersion = IrVersion, ProducerName = "MLNet.Contrastive", ProducerVersion = typeof(EncoderOnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            Graph = graph, DocString = description,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    /// <summary>Throws when a weight is NaN or infinite (training diverged): such a model cannot be exported.</summary>
    internal static void CheckFinite(nn.Module module, string what)
    {
        if (FiniteWeights.FirstNonFinite(module) is not null)
            throw new InvalidDataException($"The {what}'s weights contain NaN or infinite values (its training diverged); it cannot be exported.");
    }

    /// <summary>
    /// Each stage's spatial size at the exported input size: every stride-2 layer (3×3 or 7×7 convolution with
    /// padding, the 3×3 max-pool) maps a side s to ⌊(s − 1) / 2⌋ + 1.
    /// </summary>
    private static IReadOnlyList<(long Height, long Width)> StageSizes(ResNetEncoder encoder, EncoderOnnxOptions options)
    {
        static long Half(long side) => (side - 1) / 2 + 1;
        var (height, width) = ((long)options.Height, (long)options.Width);
        if (!encoder.Options.SmallImageStem) (height, width) = (Half(Half(height)), Half(Half(width)));
        return encoder.Options.StageWidths.Select((_, stage) => stage == 0 && encoder.Options.FirstStageStride == 1
            ? (height, width)
            : (height, width) = (Half(height), Half(width))).ToList();
    }

    /// <summary>
    /// Adaptive average pooling to grid × grid as the ONNX operator that computes the same means: GlobalAveragePool for
    /// a 1 × 1 grid, else AveragePool whose windows are the adaptive bins (a 7 × 7 stage on a 2 × 2 grid: windows of 4
    /// at stride 3, overlapping by one row as PyTorch's bins do). [N, C, H, W] → [N, C, grid, grid].
    /// </summary>
    private static string GridAverage(B builder, string input, (long Height, long Width) size, int grid)
    {
        if (grid == 1) return builder.Node("GlobalAveragePool", [input]);
        var (kernelHeight, strideHeight) = Window(size.Height, grid);
        var (kernelWidth, strideWidth) = Window(size.Width, grid);
        return builder.Node("AveragePool", [input], null, B.Ints("kernel_shape", [kernelHeight, kernelWidth]), B.Ints("strides", [strideHeight, strideWidth]));
    }

    /// <summary>The kernel and stride whose windows are adaptive pooling's bins [⌊i·size/grid⌋, ⌈(i+1)·size/grid⌉).</summary>
    private static (long Kernel, long Stride) Window(long size, int grid)
    {
        var bins = Enumerable.Range(0, grid).Select(i => (Start: i * size / grid, End: ((i + 1) * size + grid - 1) / grid)).ToList();
        var (kernel, stride) = (bins[0].End - bins[0].Start, grid == 1 ? 1 : bins[1].Start - bins[0].Start);
        if (bins.Select((b, i) => b.End - b.Start != kernel || b.Start != i * stride).Any(mismatch => mismatch))
            throw new NotSupportedException($"A stage of size {size} cannot be averaged over {grid} regions by one ONNX AveragePool (its bins differ in size); use an embedding grid of 1 or 2, or another image size.");
        return (kernel, stride);
    }

    private static string Residual(B builder, ResidualBlock block, string name, string input)
    {
        var y = input;
        for (var i = 0; i < block.Layers.Count; i++)
            y = Conv(builder, block.Layers[i].Conv, block.Layers[i].Norm, i == 0 ? y : builder.Node("Relu", [y]));
        var skip = block.Shortcut is null ? input : Sequence(builder, block.Shortcut, $"{name}.shortcut", input);
        return builder.Node("Relu", [builder.Node("Add", [y, skip])]);
    }

    /// <summary>Translates the children of a Sequential in order; a Conv2d directly followed by a BatchNorm2d becomes one Conv.</summary>
    internal static string Sequence(B builder, Sequential sequence, string name, string input)
    {
        var children = sequence.named_children().ToList();
        for (var i = 0; i < children.Count; i++)
        {
            var (childName, module) = children[i];
            if (module is Conv2d conv)
            {
                var norm = i + 1 < children.Count ? children[i + 1].module as BatchNorm : null;
                if (norm is not null) i++;
                input = Conv(builder, conv, norm, input);
                continue;
            }
            input = module switch
            {
                BatchNorm norm => Normalization(builder, norm, input),
                ReLU => builder.Node("Relu", [input]),
                MaxPool2d pool when pool.dilation.All(d => d == 1) => builder.Node("MaxPool", [input], null,
                    B.Ints("kernel_shape", pool.kernel_size), B.Ints("strides", pool.stride ?? pool.kernel_size),
                    B.Ints("pads", pool.padding.Concat(pool.padding)), B.Int("ceil_mode", pool.ceil_mode ? 1 : 0)),
                AdaptiveAvgPool2d pool when pool.output_size.All(s => s == 1) => builder.Node("GlobalAveragePool", [input]),
                Flatten flatten when flatten.end_dim == -1 => builder.Node("Flatten", [input], null, B.Int("axis", flatten.start_dim)),
                Linear linear => Gemm(builder, linear, input),
                _ => throw new NotSupportedException(
                    $"Module '{name}.{childName}' ({module.GetType().Name}) cannot be exported to ONNX; supported: Conv2d, BatchNorm2d, ReLU, " +
                    "MaxPool2d (no dilation), AdaptiveAvgPool2d(1), Flatten (to the last dimension), Linear."),
            };
        }
        return input;
    }

    /// <summary>A linear layer: [N, in] → [N, out].</summary>
    internal static string Gemm(B builder, Linear linear, string input) =>
        builder.Node("Gemm", linear.bias is null
            ? [input, Weights(builder, linear.weight!)]
            : [input, Weights(builder, linear.weight!), Weights(builder, linear.bias)], null, B.Int("transB", 1));

    /// <summary>Conv with an optional batch norm folded in: W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β.</summary>
    private static string Conv(B builder, Conv2d conv, BatchNorm? norm, string input)
    {
        if (conv.groups != 1 || conv.dilation.Any(d => d != 1) || conv.padding_mode != PaddingModes.Zeros || conv.padding_type is not null)
            throw new NotSupportedException($"Conv2d with groups {conv.groups}, dilation {string.Join("×", conv.dilation)}, padding mode {conv.padding_mode} cannot be exported; only plain zero-padded convolutions can.");
        var weight = conv.weight!.detach().cpu();
        var bias = conv.bias?.detach().cpu() ?? zeros(conv.out_channels);
        if (norm is not null)
        {
            using var epsilon = norm.eps.ToScalar();
            var factor = (norm.weight?.detach().cpu() ?? ones(norm.num_features)) / norm.running_var!.cpu().add(epsilon).sqrt();
            weight = weight * factor.view(-1, 1, 1, 1);
            bias = (bias - norm.running_mean!.cpu()) * factor + (norm.bias?.detach().cpu() ?? zeros(norm.num_features));
        }
        return builder.Node("Conv", [input, Weights(builder, weight), Weights(builder, bias)], null,
            B.Ints("kernel_shape", conv.kernel_size), B.Ints("strides", conv.stride), B.Ints("pads", conv.padding!.Concat(conv.padding!)));
    }

    private static string Normalization(B builder, BatchNorm norm, string input)
    {
        var features = norm.num_features;
        return builder.Node("BatchNormalization",
            [input, Weights(builder, norm.weight?.detach() ?? ones(features)), Weights(builder, norm.bias?.detach() ?? zeros(features)),
             Weights(builder, norm.running_mean!), Weights(builder, norm.running_var!)], null,
            new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = (float)norm.eps });
    }

    internal static string Weights(B builder, Tensor tensor) =>
        builder.Initializer("w", tensor.detach().cpu().contiguous().data<float>().ToArray(), tensor.shape);
}
