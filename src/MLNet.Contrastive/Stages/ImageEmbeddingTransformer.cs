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
public sealed class ImageEmbeddingTransformer : ChainStage, IDisposable
{
    private readonly bool ownsOnnxFile;
    private readonly string scoringOnnxPath;

    internal ImageEmbeddingTransformer(TransformerChain<ITransformer> chain, PretrainResult pretraining, string onnxPath, bool ownsOnnxFile, string scoringOnnxPath)
        : base(chain)
    {
        Pretraining = pretraining;
        OnnxPath = onnxPath;
        this.ownsOnnxFile = ownsOnnxFile;
        this.scoringOnnxPath = scoringOnnxPath;
    }

    /// <summary>The pretraining run: encoder (TorchSharp), history, throughput.</summary>
    public PretrainResult Pretraining { get; }

    /// <summary>The pretrained encoder, eval mode, CPU.</summary>
    public ImageEncoder Encoder => Pretraining.Encoder;

    /// <summary>
    /// The exported encoder, input [N, C, H, W] pixels 0–255, output [N, E] (for <c>ImageEmbedder</c> and other ONNX
    /// Runtime clients). ApplyOnnxModel applies the same graph with its output rows flattened (a temporary file).
    /// </summary>
    public string OnnxPath { get; }


    /// <summary>Releases the ONNX Runtime session and deletes the temporary ONNX files this stage made.</summary>
    public void Dispose()
    {
        Chain.Dispose();
        if (ownsOnnxFile && File.Exists(OnnxPath)) File.Delete(OnnxPath);
        if (File.Exists(scoringOnnxPath)) File.Delete(scoringOnnxPath);
    }
}
