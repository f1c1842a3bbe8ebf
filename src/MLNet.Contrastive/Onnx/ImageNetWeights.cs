using MLNet.Contrastive.Models;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Onnx;

/// <summary>
/// ImageNet-pretrained ResNet-18 weights from the ONNX model that ML.NET's <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>
/// package ships (what <c>DnnFeaturizeImage</c> runs): real weights that a package restore brings, with no download at run
/// time. CNTK's ResNet-18 behind it has one more block in its last stage than torchvision's (2-2-2-3 blocks, 15.9 M
/// parameters): its 22 convolutions, each followed by its batch norm, are mapped onto a <see cref="EncoderPreset.ResNet18"/>
/// encoder with <see cref="EncoderOptions.StageBlocks"/> 2-2-2-3 by the graph's structure (the 7 × 7 stem, then each
/// block's 3 × 3 convolutions in order, and its 1 × 1 shortcut), with strict shape checks. Its asymmetric paddings
/// (CNTK's) equal PyTorch's symmetric ones at even input sizes. The network was trained on BGR pixels 0–255 minus a mean image
/// (<c>ResNetPreprocess.onnx</c>): the stem's input channels are reversed to take RGB, and the normalisation becomes the
/// mean image's per-channel average with a standard deviation of 1/255 on pixels in [0, 1].
/// </summary>
public static class ImageNetWeights
{
    /// <summary>The name <c>--init</c> and <see cref="Training.PretrainedEncoder.Load"/> take for these weights.</summary>
    public const string ResNet18Name = "imagenet-resnet18";

    /// <summary>Where the package's build step puts the network, relative to the application's folder.</summary>
    public const string ResNet18File = "DnnImageModels/ResNet18Onnx/ResNet18.onnx";

    /// <summary>The mean image's file, relative to the application's folder.</summary>
    public const string PreprocessFile = "DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx";

    /// <summary>The image side the weights were trained at.</summary>
    public const int ImageSize = 224;

    /// <summary>The path of the package's ResNet18.onnx beside the application, or a clear error naming the package to reference.</summary>
    public static string ResNet18Path()
    {
        var path = Path.Combine(AppContext.BaseDirectory, ResNet18File);
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"{path} is missing: ML.NET's ImageNet ResNet-18 comes with the application's reference to the Microsoft.ML.DnnImageFeaturizer.ResNet18 package (its build step copies it there).", path);
        return path;
    }

    /// <summary>
    /// A ResNet-18 encoder (3 channels, the ImageNet stem) holding the ImageNet weights of <paramref name="onnxPath"/>
    /// (default: the package's file beside the application), in eval mode. Input: RGB in [0, 1], any size from 32 px.
    /// </summary>
    public static ResNetEncoder ResNet18(string? onnxPath = null, string? preprocessPath = null)
    {
        onnxPath ??= ResNet18Path();
        preprocessPath ??= Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(onnxPath)!)!, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        var model = Read(onnxPath);
        var graph = model.Graph;
        var initializers = graph.Initializer.ToDictionary(i => i.Name);
        var consumers = graph.Node.SelectMany(n => n.Input.Select(input => (input, n))).ToLookup(p => p.input, p => p.n);

        // Each Conv with the BatchNormalization that reads its output, in the graph's (topological) order.
        var layers = graph.Node.Where(n => n.OpType == "Conv").Select(conv =>
        {
            var norm = consumers[conv.Output[0]].SingleOrDefault(n => n.OpType == "BatchNormalization")
                ?? throw new InvalidDataException($"{onnxPath}: convolution '{conv.Name}' is not followed by a batch norm; not ML.NET's ResNet-18.");
            return (Conv: conv, Norm: norm);
        }).ToList();
        var stems = layers.Where(l => Dims(initializers, l.Conv.Input[1], onnxPath)[2] == 7).ToList();
        var shortcuts = new Queue<(NodeProto Conv, NodeProto Norm)>(layers.Where(l => Dims(initializers, l.Conv.Input[1], onnxPath)[2] == 1));
        var mains = new Queue<(NodeProto Conv, NodeProto Norm)>(layers.Where(l => Dims(initializers, l.Conv.Input[1], onnxPath)[2] == 3));
        if (stems.Count != 1 || shortcuts.Count != 3 || mains.Count != 18)
            throw new InvalidDataException($"{onnxPath}: {stems.Count} 7×7, {mains.Count} 3×3 and {shortcuts.Count} 1×1 convolutions; ML.NET's ResNet-18 has 1, 18 and 3.");

        var options = EncoderOptions.For(3, ImageSize, EncoderPreset.ResNet18);
        options.StageBlocks = [2, 2, 2, 3];
        var encoder = new ResNetEncoder(options);
        using (var noGrad = no_grad())
        {
            var stem = encoder.Stem.children().ToList();
            Load(stem[0] as TorchSharp.Modules.Conv2d, stem[1] as TorchSharp.Modules.BatchNorm, stems[0], initializers, onnxPath, reverseInputChannels: true);
            foreach (var block in encoder.Blocks)
            {
                foreach (var (conv, norm) in block.Layers) Load(conv, norm, mains.Dequeue(), initializers, onnxPath);
                if (block.Shortcut?.children().ToList() is { } shortcut)
                    Load(shortcut[0] as TorchSharp.Modules.Conv2d, shortcut[1] as TorchSharp.Modules.BatchNorm, shortcuts.Dequeue(), initializers, onnxPath);
            }
            var mean = ChannelMeans(preprocessPath);
            encoder.NormalizationMean.copy_(tensor(new[] { mean[2] / 255f, mean[1] / 255f, mean[0] / 255f }).view(1, 3, 1, 1));
            // Held in a local: a Scalar must outlive the native call that reads it (see CollectionPause).
            using var pixelScale = (1f / 255f).ToScalar();
            encoder.NormalizationStd.fill_(pixelScale);
        }
        FiniteWeights.Check(encoder, onnxPath);
        encoder.eval();
        return encoder;
    }

    private static ModelProto Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: ONNX model not found.", path);
        try
        {
            using var stream = File.OpenRead(path);
            var model = ModelProto.Parser.ParseFrom(stream);
            return model.Graph is null ? throw new InvalidDataException($"{path}: the ONNX model has no graph.") : model;
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{path}: not an ONNX model ({e.Message}).", e);
        }
    }

    /// <summary>The BGR channel averages of the mean image that ResNetPreprocess.onnx subtracts (pixels 0–255).</summary>
    private static float[] ChannelMeans(string path)
    {
        var image = Read(path).Graph.Initializer.FirstOrDefault(i => i.Dims.Count == 4 && i.Dims[1] == 3)
            ?? throw new InvalidDataException($"{path}: no [1, 3, H, W] mean image.");
        var values = Floats(image, path);
        var plane = values.Length / 3;
        return [.. Enumerable.Range(0, 3).Select(c => (float)values.AsSpan(c * plane, plane).ToArray().Average())];
    }

    private static long[] Dims(Dictionary<string, TensorProto> initializers, string name, string path) =>
        initializers.TryGetValue(name, out var t) ? [.. t.Dims] : throw new InvalidDataException($"{path}: '{name}' is not an initializer.");

    private static float[] Floats(TensorProto t, string path)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Float) throw new InvalidDataException($"{path}: '{t.Name}' is not float32.");
        return OnnxWeights.Floats(t).ToArray();
    }

    /// <summary>Copies a Conv's weight and its BatchNormalization's scale, bias, mean and variance, checking every shape.</summary>
    private static void Load(TorchSharp.Modules.Conv2d? conv, TorchSharp.Modules.BatchNorm? norm, (NodeProto Conv, NodeProto Norm) layer,
        Dictionary<string, TensorProto> initializers, string path, bool reverseInputChannels = false)
    {
        if (conv is null || norm is null) throw new InvalidOperationException("The ResNet-18 encoder's layout changed: a convolution or batch norm is not where the import expects it.");
        if (layer.Conv.Input.Count > 2) throw new InvalidDataException($"{path}: convolution '{layer.Conv.Name}' has a bias; ResNet-18's have none.");
        void Copy(Tensor target, string name, string what)
        {
            var source = initializers.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"{path}: '{name}' ({what}) is not an initializer.");
            if (!source.Dims.SequenceEqual(target.shape))
                throw new InvalidDataException($"{path}: '{name}' ({what}) is [{string.Join(", ", source.Dims)}]; the ResNet-18 layer takes [{string.Join(", ", target.shape)}].");
            using var values = tensor(Floats(source, path), target.shape);
            target.copy_(reverseInputChannels && what == "weight" ? values.flip(1) : values);
        }
        Copy(conv.weight!, layer.Conv.Input[1], "weight");
        Copy(norm.weight!, layer.Norm.Input[1], "batch-norm scale");
        Copy(norm.bias!, layer.Norm.Input[2], "batch-norm bias");
        Copy(norm.running_mean!, layer.Norm.Input[3], "batch-norm mean");
        Copy(norm.running_var!, layer.Norm.Input[4], "batch-norm variance");
    }
}
