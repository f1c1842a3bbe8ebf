using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// A fitted stage made of ML.NET's own transforms: it transforms, maps rows and saves as that chain, so the model.zip
/// it writes loads in any ML.NET app as a plain <see cref="TransformerChain{TLastTransformer}"/>, without this library.
/// </summary>
public abstract class ChainStage : ITransformer
{
    private protected ChainStage(TransformerChain<ITransformer> chain) => Chain = chain;

    /// <summary>The ML.NET transforms this stage is made of.</summary>
    public TransformerChain<ITransformer> Chain { get; }

    /// <inheritdoc/>
    public bool IsRowToRowMapper => ((ITransformer)Chain).IsRowToRowMapper;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Chain.GetOutputSchema(inputSchema);

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => ((ITransformer)Chain).GetRowToRowMapper(inputSchema);

    /// <inheritdoc/>
    public IDataView Transform(IDataView input) => Chain.Transform(input);

    void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)Chain).Save(ctx);
}

/// <summary>
/// A <see cref="ChainStage"/> ending in ApplyOnnxModel with a graph this library exported: it keeps that graph's [N, …]
/// form at <see cref="OnnxPath"/> (for ONNX Runtime clients) and the flattened copy ApplyOnnxModel reads, and deletes
/// the temporary ones when disposed.
/// </summary>
public abstract class OnnxChainStage : ChainStage, IDisposable
{
    private readonly bool ownsOnnxFile;
    private readonly string scoringOnnxPath;

    private protected OnnxChainStage(TransformerChain<ITransformer> chain, string onnxPath, bool ownsOnnxFile, string scoringOnnxPath) : base(chain)
    {
        OnnxPath = onnxPath;
        this.ownsOnnxFile = ownsOnnxFile;
        this.scoringOnnxPath = scoringOnnxPath;
    }

    /// <summary>
    /// The exported graph, input [N, C, H, W] pixels 0–255, output [N, E] (for <c>ImageEmbedder</c> and other ONNX Runtime
    /// clients). ApplyOnnxModel applies the same graph with its output rows flattened (a temporary file).
    /// </summary>
    public string OnnxPath { get; }

    /// <summary>
    /// Fits <paramref name="preprocessing"/> → ApplyOnnxModel → DropColumns(<paramref name="helpers"/>) on
    /// <paramref name="input"/> and makes the stage with <paramref name="create"/>(chain, ONNX path, owns it, scoring path).
    /// <paramref name="export"/>(path, flat) writes the graph: [N, …] at <paramref name="onnxPath"/> (a temporary file when
    /// null) and, flattened, the copy ApplyOnnxModel reads, whose output is declared [<paramref name="outputSize"/>].
    /// On failure the files made here are deleted.
    /// </summary>
    internal static TStage Build<TStage>(MLContext mlContext, IDataView input, IEstimator<ITransformer> preprocessing, string pixels,
        IEnumerable<string> helpers, string outputColumnName, int outputSize, string? onnxPath, Action<string, bool> export,
        Func<TransformerChain<ITransformer>, string, bool, string, TStage> create)
    {
        static string TemporaryFile() => Path.Combine(Path.GetTempPath(), $"mlnet-contrastive-{Guid.NewGuid():N}.onnx");
        var ownsFile = onnxPath is null;
        var path = onnxPath ?? TemporaryFile();
        var scoringPath = TemporaryFile();
        try
        {
            export(path, false);
            export(scoringPath, true);
            // ApplyOnnxModel types an [N, E] output as [1, E]; the stage applies the same graph with its rows flattened,
            // [N·E], declared [E] (one row at a time), so the output column is a plain vector of E values.
            var chain = preprocessing
                .Append(mlContext.Transforms.ApplyOnnxModel([outputColumnName], [pixels], scoringPath,
                    new Dictionary<string, int[]> { [outputColumnName] = [outputSize] }, gpuDeviceId: null, fallbackToCpu: false))
                .Append(mlContext.Transforms.DropColumns([.. helpers]))
                .Fit(input);
            return create(new TransformerChain<ITransformer>(chain.ToArray()), path, ownsFile, scoringPath);
        }
        catch
        {
            if (ownsFile) File.Delete(path);
            File.Delete(scoringPath);
            throw;
        }
    }

    /// <summary>Releases the ONNX Runtime session and deletes the temporary ONNX files this stage made.</summary>
    public void Dispose()
    {
        Chain.Dispose();
        if (ownsOnnxFile && File.Exists(OnnxPath)) File.Delete(OnnxPath);
        if (File.Exists(scoringOnnxPath)) File.Delete(scoringOnnxPath);
    }
}
