using Google.Protobuf;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using Onnx;
using static TorchSharp.torch;
using B = MLNet.Contrastive.Onnx.OnnxGraphBuilder;

namespace MLNet.Contrastive.Onnx;

/// <summary>
/// Exports the two towers of a <see cref="Clip"/> run to ONNX (opset 17): the image tower — pixels [N, C, H, W] (0–255)
/// → encoder → projection → unit-length joint embedding [N, P] — and the text tower — caption features [N, T]
/// (<see cref="Data.TextFeaturization"/>) → MLP → unit-length [N, P]; with image pairing, the second images' tower in
/// place of the text tower. The same graphs, with the class prompts' embeddings appended, make the zero-shot classifier.
/// </summary>
public static class ClipOnnxExporter
{
    /// <summary>Writes the image tower; <paramref name="options"/> give the names and the image size (the output is always unit length).</summary>
    public static void ExportImageTower(Clip clip, string path, EncoderOnnxOptions? options = null) =>
        AtomicFile.WriteAllBytes(path, ImageTower(clip, options ?? new EncoderOnnxOptions()).ToByteArray());

    /// <summary>Writes the second images' tower (image pairing): their pixels [N, C, H, W] (0–255) → unit-length joint embedding [N, P].</summary>
    public static void ExportPairedImageTower(Clip clip, string path, EncoderOnnxOptions? options = null)
    {
        var encoder = clip.PairedEncoder ?? throw new InvalidOperationException("This CLIP run pairs images with captions; it has no second image tower.");
        AtomicFile.WriteAllBytes(path, Tower(clip, encoder, clip.PairedProjection!, options ?? new EncoderOnnxOptions(), null).ToByteArray());
    }

    /// <summary>Writes the text tower (text pairing): input <paramref name="inputName"/> [N, T], output <paramref name="outputName"/> [N, P], unit length.</summary>
    public static void ExportTextTower(Clip clip, string path, string inputName = "TextFeatures", string outputName = "TextEmbedding") =>
        AtomicFile.WriteAllBytes(path, TextTower(clip, inputName, outputName, flatOutput: false).ToByteArray());

    /// <summary>
    /// The image tower (<paramref name="prompts"/> null) or the zero-shot classifier: the unit-length image embedding
    /// times the prompts' unit-length embeddings [C, P], i.e. the cosine similarity to each class prompt, [N, C].
    /// </summary>
    internal static ModelProto ImageTower(Clip clip, EncoderOnnxOptions options, Tensor? prompts = null) =>
        Tower(clip, clip.Encoder, clip.ImageProjection, options, prompts);

    private static ModelProto Tower(Clip clip, ImageEncoder encoder, TorchSharp.Modules.Sequential projection, EncoderOnnxOptions options, Tensor? prompts)
    {
        EncoderOnnxExporter.CheckFinite(clip, "CLIP model");
        var export = new EncoderOnnxOptions
        {
            InputName = options.InputName, OutputName = options.OutputName, Height = options.Height, Width = options.Width,
            FlatOutput = options.FlatOutput, PooledOutput = true, L2Normalize = prompts is null,
            Tail = (builder, value, _) =>
            {
                value = EncoderOnnxExporter.Sequence(builder, projection, "projection", value);
                if (prompts is null) return (value, ((ClipOptions)clip.Options).EmbeddingDimension);
                value = builder.Node("LpNormalization", [value], null, B.Int("axis", 1), B.Int("p", 2));
                var matrix = EncoderOnnxExporter.Weights(builder, prompts.detach().cpu().to(ScalarType.Float32).t().contiguous());
                return (builder.Node("MatMul", [value, matrix]), prompts.shape[0]);
            },
        };
        return EncoderOnnxExporter.ToModel(encoder, export);
    }

    /// <summary>The text tower: [N, T] caption features → [N, P] unit length (or [N·P] rows one after another, for ML.NET).</summary>
    internal static ModelProto TextTower(Clip clip, string inputName, string outputName, bool flatOutput)
    {
        var tower = clip.TextTower ?? throw new InvalidOperationException("This CLIP run pairs images with images; it has no text tower.");
        EncoderOnnxExporter.CheckFinite(tower, "text tower");
        using var pause = CollectionPause.Begin();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var builder = new B("text_tower");
        builder.Graph.Input.Add(B.FloatTensor(inputName, (null, "N"), (tower.InputDimension, null)));
        var value = EncoderOnnxExporter.Sequence(builder, tower.Layers, "text_tower", inputName);
        EncoderOnnxExporter.Output(builder, value, ((ClipOptions)clip.Options).EmbeddingDimension, outputName, l2Normalize: true, flatOutput);
        return EncoderOnnxExporter.Model(builder.Graph, $"Text tower: {tower.InputDimension} hashed word-bag counts → {((ClipOptions)clip.Options).EmbeddingDimension}-d unit-length embedding");
    }
}
