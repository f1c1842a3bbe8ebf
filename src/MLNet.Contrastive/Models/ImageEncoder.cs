using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// An image encoder: a ResNet (<see cref="ResNetEncoder"/>) or a Vision Transformer (<see cref="VisionTransformer"/>),
/// chosen by <see cref="EncoderOptions.Architecture"/>. Input [N, C, H, W] float32 in [0, 1], normalised inside the network.
/// <see cref="Module{T, TResult}.forward"/> gives [N, D] (D = <see cref="OutputDimension"/>), what pretraining heads take;
/// <see cref="Embed"/> gives [N, E] (E = <see cref="EmbeddingDimension"/>), what probes, kNN, fine-tuning and the exported
/// ONNX model use. Every method, stage and exporter takes this type.
/// </summary>
public abstract class ImageEncoder : Module<Tensor, Tensor>
{
    /// <summary>Registers the module under <paramref name="name"/> with its (validated) shape.</summary>
    protected ImageEncoder(string name, EncoderOptions options) : base(name)
    {
        options.Validate();
        Options = options;
    }

    /// <summary>A randomly initialised encoder of the shape <paramref name="options"/> gives.</summary>
    public static ImageEncoder Create(EncoderOptions options) => options.Architecture switch
    {
        EncoderArchitecture.VisionTransformer => new VisionTransformer(options),
        _ => new ResNetEncoder(options),
    };

    /// <summary>The encoder's shape.</summary>
    public EncoderOptions Options { get; }

    /// <summary>D, the width of <see cref="Module{T, TResult}.forward"/>'s output.</summary>
    public int OutputDimension => Options.OutputDimension;

    /// <summary>E, the width of <see cref="Embed"/>'s output.</summary>
    public int EmbeddingDimension => Options.EmbeddingDimension;

    /// <summary>The embedding: [N, C, H, W] → [N, E].</summary>
    public abstract Tensor Embed(Tensor images);

    /// <summary>
    /// The last feature map, before pooling: a ResNet's last stage [N, D, H', W'], a ViT's patch tokens after the last norm
    /// laid out on their grid [N, D, H/P, W/P]. Distillation matches a student's map to a teacher's.
    /// </summary>
    internal abstract Tensor FeatureMap(Tensor images);

    /// <summary>Per-channel mean subtracted from pixels in [0, 1], [1, C, 1, 1].</summary>
    internal abstract Tensor NormalizationMean { get; }

    /// <summary>Per-channel standard deviation they are divided by, [1, C, 1, 1].</summary>
    internal abstract Tensor NormalizationStd { get; }
}
