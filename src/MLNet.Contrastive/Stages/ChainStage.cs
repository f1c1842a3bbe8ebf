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
