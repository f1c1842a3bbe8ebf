using MLNet.Contrastive.Models;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// Weights to start training from instead of a random initialisation: a pretraining run's checkpoint (or the run
/// folder holding it), a finished run, or an encoder in memory. <see cref="PretrainOptions.Initialization"/> takes it
/// (continue self-supervised training on new data with any method, or train the supervised baseline from it), and so
/// does fine-tuning. Its shape becomes the run's encoder shape.
/// </summary>
public sealed class PretrainedEncoder
{
    private PretrainedEncoder(ImageEncoder encoder, string source, (int Channels, int Height, int Width)? imageShape, int? steps = null, int? processes = null)
    {
        Encoder = encoder;
        Source = source;
        ImageShape = imageShape;
        Steps = steps;
        Processes = processes;
    }

    /// <summary>Where the weights come from (a checkpoint path, or a description), for messages.</summary>
    public string Source { get; }

    /// <summary>The encoder's shape.</summary>
    public EncoderOptions EncoderOptions => Encoder.Options;

    /// <summary>Channels, height and width of the images the encoder was trained on, when known (checkpoints and runs record them).</summary>
    public (int Channels, int Height, int Width)? ImageShape { get; }

    /// <summary>Optimizer steps behind these weights, when known (checkpoints and runs record them).</summary>
    public int? Steps { get; }

    /// <summary>Data-parallel processes (ranks) that trained these weights, when known (checkpoints record it; 1 for one process).</summary>
    public int? Processes { get; }

    /// <summary>The encoder itself (e.g. for <see cref="Onnx.EncoderOnnxExporter"/>); training from it copies its weights and leaves it unchanged.</summary>
    public ImageEncoder Encoder { get; }

    /// <summary>
    /// The encoder of a checkpoint, or of the run folder holding <see cref="RunFolder.CheckpointFile"/> (what
    /// <c>pretrain --out</c> writes), or a PyTorch ResNet state dict (.pt, .pth, .safetensors: <see cref="TorchvisionWeights"/>),
    /// or, for <see cref="Onnx.ImageNetWeights.ResNet18Name"/> ("imagenet-resnet18"), ML.NET's ImageNet ResNet-18
    /// (<see cref="ImageNetResNet18"/>). <paramref name="normalization"/>: the per-channel mean and standard deviation
    /// (pixels in [0, 1]) that a PyTorch state dict's weights expect, ImageNet's when null (checkpoints and ML.NET's ResNet-18
    /// carry their own, and refuse one).
    /// </summary>
    public static PretrainedEncoder Load(string path, (float[] Mean, float[] Std)? normalization = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stateDict = TorchvisionWeights.IsWeightsFile(path) && !Directory.Exists(path);
        if (normalization is not null && !stateDict)
            throw new ArgumentException($"{path}: a normalisation is given only with a PyTorch state dict (.pt, .pth, .safetensors); checkpoints and ML.NET's ResNet-18 carry their own.", nameof(normalization));
        if (path == Onnx.ImageNetWeights.ResNet18Name) return ImageNetResNet18();
        if (stateDict)
            return new PretrainedEncoder(TorchvisionWeights.Load(path, normalization?.Mean, normalization?.Std), $"{path} (PyTorch state dict)", null);
        var file = RunFolder.FindCheckpoint(path);
        var info = Checkpoint.ReadInfo(file);
        return new PretrainedEncoder(Checkpoint.LoadEncoder(file), file, (info.Channels, info.Height, info.Width), info.GlobalStep, info.Ranks);
    }

    /// <summary>
    /// ML.NET's ImageNet-pretrained ResNet-18 (<see cref="Onnx.ImageNetWeights.ResNet18"/>: the ONNX model of the
    /// Microsoft.ML.DnnImageFeaturizer.ResNet18 package, which the application must reference), trained at 224 × 224 RGB.
    /// </summary>
    public static PretrainedEncoder ImageNetResNet18(string? onnxPath = null) =>
        new(Onnx.ImageNetWeights.ResNet18(onnxPath), $"ML.NET's ImageNet ResNet-18 ({onnxPath ?? Onnx.ImageNetWeights.ResNet18File})",
            (3, Onnx.ImageNetWeights.ImageSize, Onnx.ImageNetWeights.ImageSize));

    /// <summary>The encoder of a finished run (e.g. <c>ImageEmbeddingTransformer.Pretraining</c>), with the image shape it trained on.</summary>
    public static PretrainedEncoder From(PretrainResult run)
    {
        ArgumentNullException.ThrowIfNull(run);
        return new PretrainedEncoder(run.Encoder, $"the {run.Options.Method.Name} run", run.ImageShape, run.Steps);
    }

    /// <summary>An encoder in memory; its weights are read when training starts.</summary>
    public static PretrainedEncoder From(ImageEncoder encoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        return new PretrainedEncoder(encoder, "the given encoder", null);
    }

    /// <summary>Copies every weight and batch-norm statistic into <paramref name="target"/>, which must have the same shape.</summary>
    internal void CopyTo(ImageEncoder target)
    {
        var source = Encoder.state_dict();
        var destination = target.state_dict();
        foreach (var (name, tensor) in destination)
            if (!source.TryGetValue(name, out var weights) || !weights.shape.SequenceEqual(tensor.shape))
                throw new ArgumentException($"{Source}: the pretrained encoder's '{name}' is {Shape(weights)}, the encoder being trained needs {Shape(tensor)}.");
        using var noGrad = no_grad();
        foreach (var (name, tensor) in destination) tensor.copy_(source[name]);
    }

    private static string Shape(Tensor? tensor) => tensor is null ? "missing" : $"[{string.Join(", ", tensor.shape)}]";
}
