using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// The fitted embedding stage: a chain of ML.NET's own transforms ending in ApplyOnnxModel with the pretrained
/// encoder. Saving writes that chain (with the ONNX model inside), so the saved model.zip loads in any ML.NET app
/// as a plain <see cref="TransformerChain{TLastTransformer}"/>, without this library.
/// </summary>
public sealed class ImageEmbeddingTransformer : OnnxChainStage
{
    internal ImageEmbeddingTransformer(TransformerChain<ITransformer> chain, PretrainResult pretraining, string onnxPath, bool ownsOnnxFile, string scoringOnnxPath)
        : base(chain, onnxPath, ownsOnnxFile, scoringOnnxPath) =>
        Pretraining = pretraining;

    /// <summary>The pretraining run: encoder (TorchSharp), history, throughput.</summary>
    public PretrainResult Pretraining { get; }

    /// <summary>The pretrained encoder, eval mode, CPU.</summary>
    public ImageEncoder Encoder => Pretraining.Encoder;
}
