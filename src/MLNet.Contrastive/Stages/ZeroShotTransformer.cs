using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// The fitted zero-shot stage: ML.NET's own transforms — the image chain, ApplyOnnxModel with the image tower and the
/// class prompts' embeddings (Similarity [C]), and a multiclass classifier (Score [C], PredictedLabel). Saving writes
/// that chain, ONNX model included, so the model.zip loads in any ML.NET app as a plain <see cref="TransformerChain{TLastTransformer}"/>.
/// </summary>
public sealed class ZeroShotTransformer : ChainStage, IDisposable
{
    private readonly bool ownsOnnxFile;

    internal ZeroShotTransformer(TransformerChain<ITransformer> chain, PretrainedClip model, IReadOnlyList<string> classNames, Tensor promptEmbeddings,
        string onnxPath, bool ownsOnnxFile)
        : base(chain)
    {
        Model = model;
        ClassNames = classNames.ToArray();
        PromptEmbeddings = promptEmbeddings;
        OnnxPath = onnxPath;
        this.ownsOnnxFile = ownsOnnxFile;
    }

    /// <summary>The CLIP-style run whose towers the stage applies.</summary>
    public PretrainedClip Model { get; }

    /// <summary>The classes, in the order of Score's slots and PredictedLabel's key values.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The class prompts' unit-length embeddings [C, P] (the text tower's, averaged over the templates).</summary>
    public Tensor PromptEmbeddings { get; }

    /// <summary>The exported zero-shot graph: pixels [N, C, H, W] (0–255) → similarities to the classes, flattened [N·C].</summary>
    public string OnnxPath { get; }

    /// <summary>
    /// The index into <see cref="ClassNames"/> of each decoded image's nearest class prompt, by the towers in TorchSharp,
    /// 512 images at a time — what the chain's PredictedLabel gives row by row (key = index + 1).
    /// </summary>
    public int[] PredictClasses(ImageStore images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var shape = Model.ImageShape;
        if ((images.Channels, images.Height, images.Width) != shape)
            throw new ArgumentException($"The images are {images.Channels}×{images.Height}×{images.Width}; the image tower takes {shape.Channels}×{shape.Height}×{shape.Width}.", nameof(images));
        var predicted = new List<int>(images.Count);
        Model.Model.eval();
        foreach (var chunk in Enumerable.Range(0, images.Count).Chunk(512))
        {
            using var pause = CollectionPause.Begin();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var similarity = Model.Model.ImageEmbeddings(images.Batch(chunk)).mm(PromptEmbeddings.t());
            predicted.AddRange(similarity.argmax(1).data<long>().ToArray().Select(i => (int)i));
        }
        return [.. predicted];
    }


    /// <summary>Releases the ONNX Runtime session and deletes the temporary ONNX file, if the stage made one.</summary>
    public void Dispose()
    {
        Chain.Dispose();
        if (ownsOnnxFile && File.Exists(OnnxPath)) File.Delete(OnnxPath);
    }
}
