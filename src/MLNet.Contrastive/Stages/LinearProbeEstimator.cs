using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace MLNet.Contrastive.Stages;

/// <summary>The linear classifier a probe trains.</summary>
public enum ProbeTrainer
{
    /// <summary>Multinomial logistic regression by L-BFGS (LbfgsMaximumEntropy).</summary>
    Lbfgs,
    /// <summary>Multinomial logistic regression by SDCA (SdcaMaximumEntropy).</summary>
    Sdca,
}

/// <summary>
/// The linear evaluation protocol as an ML.NET stage, built from ML.NET's own pieces: MapValueToKey (label) →
/// NormalizeMeanVariance (features) → LbfgsMaximumEntropy or SdcaMaximumEntropy → MapKeyToValue (PredictedLabel).
/// Fitting checks that the label column holds at least two classes. The fitted stage is a plain saveable chain
/// without the label mapping, so it scores rows that have no label column.
/// </summary>
public sealed class LinearProbeEstimator : IEstimator<TransformerChain<ITransformer>>
{
    /// <summary>Settings of the probe; every property has a documented default.</summary>
    public sealed class Options
    {
        /// <summary>The class column (any type ML.NET can map to a key). Default "Label".</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>The feature column, a float vector. Default "Embedding".</summary>
        public string FeatureColumnName { get; set; } = "Embedding";

        /// <summary>The predicted class, in the label column's type. Default "PredictedLabel".</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

        /// <summary>Default <see cref="ProbeTrainer.Lbfgs"/>.</summary>
        public ProbeTrainer Trainer { get; set; } = ProbeTrainer.Lbfgs;

        /// <summary>L2 regularisation weight. Default 1e-4.</summary>
        public float L2Regularization { get; set; } = 1e-4f;

        /// <summary>Maximum optimizer iterations (L-BFGS) or passes (SDCA). Default 200.</summary>
        public int MaximumNumberOfIterations { get; set; } = 200;
    }

    private readonly MLContext mlContext;
    private readonly Options options;

    /// <summary>A probe with the given settings.</summary>
    public LinearProbeEstimator(MLContext mlContext, Options options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.Trainer is not (ProbeTrainer.Lbfgs or ProbeTrainer.Sdca))
            throw new ArgumentOutOfRangeException(nameof(options), options.Trainer, "Unknown probe trainer.");
    }

    /// <summary>Trains the probe on the labelled rows of <paramref name="input"/>; the fitted chain scores rows without a label.</summary>
    public TransformerChain<ITransformer> Fit(IDataView input)
    {
        var label = input.Schema.GetColumnOrNull(options.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Could not find input column '{options.LabelColumnName}'");
        var (labelToKey, scoring, key) = Build(input.Schema.Select(c => c.Name));
        var keyed = labelToKey.Fit(input).Transform(input);
        var classes = (keyed.Schema[key].Type as KeyDataViewType)?.Count ?? 0;
        if (classes < 2)
            throw new ArgumentException($"The label column '{label.Name}' holds {classes} class{(classes == 1 ? "" : "es")}; a probe needs at least two.", nameof(input));
        // The label mapping is left out: the fitted chain scores rows without a label.
        return new TransformerChain<ITransformer>(((IEnumerable<ITransformer>)scoring.Fit(keyed)).ToArray());
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var (labelToKey, scoring, key) = Build(inputSchema.Select(c => c.Name));
        return new(labelToKey.Append(scoring).GetOutputSchema(inputSchema).Where(c => c.Name != key));
    }

    /// <summary>
    /// MapValueToKey (label → a key column), and NormalizeMeanVariance → trainer → MapKeyToValue → DropColumns of the
    /// normalised features; the key and feature columns get names that no input column has, so none is hidden.
    /// </summary>
    private (IEstimator<ITransformer> LabelToKey, IEstimator<ITransformer> Scoring, string Key) Build(IEnumerable<string> inputColumns)
    {
        var taken = inputColumns.Append(options.PredictedLabelColumnName).Append("PredictedLabel").Append("Score").ToHashSet();
        var key = Data.ColumnNames.Unused("ProbeLabelKey", taken);
        var features = Data.ColumnNames.Unused("ProbeFeatures", taken);
        var transforms = mlContext.Transforms;
        IEstimator<ITransformer> trainer = options.Trainer == ProbeTrainer.Lbfgs
            ? mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = key, FeatureColumnName = features,
                L2Regularization = options.L2Regularization, MaximumNumberOfIterations = options.MaximumNumberOfIterations,
            })
            : mlContext.MulticlassClassification.Trainers.SdcaMaximumEntropy(new SdcaMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = key, FeatureColumnName = features,
                L2Regularization = options.L2Regularization, MaximumNumberOfIterations = options.MaximumNumberOfIterations,
            });
        // The trainer's PredictedLabel keeps the label's key values, so MapKeyToValue needs no label at scoring time.
        var scoring = transforms.NormalizeMeanVariance(features, options.FeatureColumnName)
            .Append(trainer)
            .Append(transforms.Conversion.MapKeyToValue(options.PredictedLabelColumnName, "PredictedLabel"))
            .Append(transforms.DropColumns(features));
        return (transforms.Conversion.MapValueToKey(key, options.LabelColumnName), scoring, key);
    }
}
