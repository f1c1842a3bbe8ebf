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

    internal const string KeyColumnName = "ProbeLabelKey", FeaturesColumnName = "ProbeFeatures";

    private readonly MLContext mlContext;
    private readonly Options options;
    private readonly IEstimator<ITransformer> labelToKey;
    private readonly IEstimator<ITransformer> scoring;

    public LinearProbeEstimator(MLContext mlContext, Options options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        var transforms = mlContext.Transforms;
        IEstimator<ITransformer> trainer = options.Trainer switch
        {
            ProbeTrainer.Lbfgs => mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = KeyColumnName, FeatureColumnName = FeaturesColumnName,
                L2Regularization = options.L2Regularization, MaximumNumberOfIterations = options.MaximumNumberOfIterations,
            }),
            ProbeTrainer.Sdca => mlContext.MulticlassClassification.Trainers.SdcaMaximumEntropy(new SdcaMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = KeyColumnName, FeatureColumnName = FeaturesColumnName,
                L2Regularization = options.L2Regularization, MaximumNumberOfIterations = options.MaximumNumberOfIterations,
            }),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Trainer, "Unknown probe trainer."),
        };
        labelToKey = transforms.Conversion.MapValueToKey(KeyColumnName, options.LabelColumnName);
        // The trainer's PredictedLabel keeps the label's key values, so MapKeyToValue needs no label at scoring time.
        scoring = transforms.NormalizeMeanVariance(FeaturesColumnName, options.FeatureColumnName)
            .Append(trainer)
            .Append(transforms.Conversion.MapKeyToValue(options.PredictedLabelColumnName, "PredictedLabel"));
    }

    public TransformerChain<ITransformer> Fit(IDataView input)
    {
        var label = input.Schema.GetColumnOrNull(options.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Could not find input column '{options.LabelColumnName}'");
        var keyed = labelToKey.Fit(input).Transform(input);
        var classes = (keyed.Schema[KeyColumnName].Type as KeyDataViewType)?.Count ?? 0;
        if (classes < 2)
            throw new ArgumentException($"The label column '{label.Name}' holds {classes} class{(classes == 1 ? "" : "es")}; a probe needs at least two.", nameof(input));
        return new TransformerChain<ITransformer>(((IEnumerable<ITransformer>)scoring.Fit(keyed)).ToArray());
    }

    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        new(labelToKey.Append(scoring).GetOutputSchema(inputSchema).Where(c => c.Name != KeyColumnName));
}
