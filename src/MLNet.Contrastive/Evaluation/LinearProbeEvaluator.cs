using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Contrastive.Evaluation;

/// <summary>
/// The linear evaluation protocol on fixed features: standardise, then ML.NET's multinomial logistic regression
/// (LbfgsMaximumEntropy) on the training embeddings, accuracy on the test embeddings.
/// </summary>
public static class LinearProbeEvaluator
{
    /// <summary>Test accuracy of a linear classifier trained on <paramref name="train"/>.</summary>
    public static double Accuracy(MLContext mlContext, Embeddings train, Embeddings test, float l2Regularization = 1e-4f, int maxIterations = 200)
    {
        if (train.Labels is null || test.Labels is null) throw new ArgumentException("The linear probe needs labelled embeddings.");
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.NormalizeMeanVariance("Features"))
            .Append(mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new Microsoft.ML.Trainers.LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                L2Regularization = l2Regularization,
                MaximumNumberOfIterations = maxIterations,
            }));
        var model = pipeline.Fit(ToDataView(mlContext, train));
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(ToDataView(mlContext, test)));
        return metrics.MicroAccuracy;
    }

    /// <summary>An IDataView with a float vector column "Features" [D] and a uint column "Label".</summary>
    public static IDataView ToDataView(MLContext mlContext, Embeddings embeddings)
    {
        var rows = Enumerable.Range(0, embeddings.Count).Select(i => new Row
        {
            Features = embeddings.Row(i).ToArray(),
            Label = (uint)(embeddings.Labels?[i] ?? 0),
        });
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, embeddings.Dimension);
        return mlContext.Data.LoadFromEnumerable(rows, schema);
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
        public uint Label { get; set; }
    }
}
