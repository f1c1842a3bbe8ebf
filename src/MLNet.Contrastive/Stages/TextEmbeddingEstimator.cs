using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// The text tower of a CLIP-style run as an ML.NET stage: ML.NET's NormalizeText → ProduceHashedWordBags (the features
/// the tower trained on, <see cref="TextFeaturization"/>) → ApplyOnnxModel with the exported tower, adding a unit-length
/// joint-space embedding [P] float32 of each text — comparable by dot product with the image tower's
/// (<c>image_tower.onnx</c>, <see cref="ClipOnnxExporter.ExportImageTower"/>) for text-to-image retrieval. The stage
/// reads no rows when fitted; its model.zip loads in a plain ML.NET app.
/// </summary>
public sealed class TextEmbeddingEstimator : IEstimator<TextEmbeddingTransformer>
{
    /// <summary>Settings of the text stage; every property except the model has a documented default.</summary>
    public sealed class Options
    {
        /// <summary>The CLIP-style run (text pairing); required.</summary>
        public PretrainedClip? Model { get; set; }

        /// <summary>The text column. Default "Text".</summary>
        public string InputColumnName { get; set; } = "Text";

        /// <summary>The embedding column, [P] float32, unit length. Default "TextEmbedding".</summary>
        public string OutputColumnName { get; set; } = "TextEmbedding";

        /// <summary>A copy (the model is shared).</summary>
        public Options Clone() => (Options)MemberwiseClone();
    }

    private readonly MLContext mlContext;
    private readonly Options options;

    /// <summary>An estimator with its own copy of <paramref name="options"/>.</summary>
    public TextEmbeddingEstimator(MLContext mlContext, Options options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        this.options = options?.Clone() ?? throw new ArgumentNullException(nameof(options));
        PretrainedClip.WithTextTower(this.options.Model, "the text stage");
    }

    /// <summary>Exports the text tower and fits the chain on <paramref name="input"/>'s schema.</summary>
    public TextEmbeddingTransformer Fit(IDataView input)
    {
        if (input.Schema.GetColumnOrNull(options.InputColumnName) is null)
            throw new ArgumentOutOfRangeException(nameof(input), $"Could not find input column '{options.InputColumnName}'");
        var (chain, features, helpers) = Featurization(input.Schema.Select(c => c.Name));
        var clip = options.Model!.Model;
        var embedding = ((Methods.ClipOptions)clip.Options).EmbeddingDimension;
        var onnxPath = Path.Combine(Path.GetTempPath(), $"mlnet-contrastive-{Guid.NewGuid():N}.onnx");
        try
        {
            // Flattened rows, declared [P]: ApplyOnnxModel scores one row at a time and types the output as a plain vector.
            AtomicFile.WriteAllBytes(onnxPath, Google.Protobuf.MessageExtensions.ToByteArray(
                ClipOnnxExporter.TextTower(clip, features, options.OutputColumnName, flatOutput: true)));
            var fitted = chain
                .Append(mlContext.Transforms.ApplyOnnxModel([options.OutputColumnName], [features], onnxPath,
                    new Dictionary<string, int[]> { [options.OutputColumnName] = [embedding] }, gpuDeviceId: null, fallbackToCpu: false))
                .Append(mlContext.Transforms.DropColumns([.. helpers, features]))
                .Fit(input);
            return new TextEmbeddingTransformer(new TransformerChain<ITransformer>([.. fitted]), onnxPath);
        }
        catch
        {
            File.Delete(onnxPath);
            throw;
        }
    }

    /// <summary>The input's columns and the embedding, a float vector; ML.NET's text transforms check the input column.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (inputSchema.All(c => c.Name != options.InputColumnName))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find input column '{options.InputColumnName}'");
        var (chain, features, helpers) = Featurization(inputSchema.Select(c => c.Name));
        // SchemaShape.Column has no public constructor: the features, a float vector too, stand in under the embedding's name.
        return chain.Append(mlContext.Transforms.CopyColumns(options.OutputColumnName, features))
            .Append(mlContext.Transforms.DropColumns([.. helpers, features]))
            .GetOutputSchema(inputSchema);
    }

    private (IEstimator<ITransformer> Chain, string Features, IReadOnlyList<string> Helpers) Featurization(IEnumerable<string> inputColumns)
    {
        var taken = inputColumns.Append(options.OutputColumnName).ToHashSet();
        var features = ColumnNames.Unused("TextFeatures", taken);
        var bits = ((Methods.ClipOptions)options.Model!.Model.Options).TextBits;
        var (chain, helpers) = TextFeaturization.Chain(mlContext, options.InputColumnName, features, bits, taken);
        return (chain, features, helpers);
    }
}

/// <summary>The fitted text stage: ML.NET's text transforms and ApplyOnnxModel with the text tower.</summary>
public sealed class TextEmbeddingTransformer : ChainStage, IDisposable
{
    internal TextEmbeddingTransformer(TransformerChain<ITransformer> chain, string onnxPath) : base(chain) => OnnxPath = onnxPath;

    /// <summary>The exported text tower ApplyOnnxModel applies (a temporary file this stage deletes when disposed).</summary>
    public string OnnxPath { get; }

    /// <summary>Releases the ONNX Runtime session and deletes the temporary ONNX file.</summary>
    public void Dispose()
    {
        Chain.Dispose();
        if (File.Exists(OnnxPath)) File.Delete(OnnxPath);
    }
}
