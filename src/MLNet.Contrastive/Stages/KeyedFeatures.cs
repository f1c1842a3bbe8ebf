using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Stages;

/// <summary>Feature vectors with their class as a key column of a given key type, key values (class names) included.</summary>
internal static class KeyedFeatures
{
    private const string KeyValuesKind = "KeyValues";

    /// <summary>
    /// A view of <paramref name="features"/> ([D] float32, named <paramref name="featureColumnName"/>) and their labels
    /// (class index i as key i + 1) in a column like <paramref name="label"/>: same name, key type and key values, so a
    /// multiclass trainer names Score's slots and PredictedLabel's values after the classes.
    /// </summary>
    public static IDataView Create(MLContext mlContext, Embeddings features, DataViewSchema.Column label, string featureColumnName)
    {
        var labels = features.Labels ?? throw new ArgumentException("The features need labels.", nameof(features));
        var schema = SchemaDefinition.Create(typeof(KeyedRow));
        var featureColumn = schema[nameof(KeyedRow.Features)];
        featureColumn.ColumnName = featureColumnName;
        featureColumn.ColumnType = new VectorDataViewType(NumberDataViewType.Single, features.Dimension);
        var labelColumn = schema[nameof(KeyedRow.Label)];
        labelColumn.ColumnName = label.Name;
        labelColumn.ColumnType = label.Type;
        if (label.Annotations.Schema.GetColumnOrNull(KeyValuesKind) is { } keyValues)
            typeof(KeyedFeatures).GetMethod(nameof(CopyAnnotation), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                .MakeGenericMethod(keyValues.Type.RawType).Invoke(null, [label.Annotations, keyValues, labelColumn]);
        // LoadFromEnumerable reads a key-typed field's value v as key v + 1, so class index i becomes key i + 1.
        var rows = Enumerable.Range(0, features.Count).Select(i => new KeyedRow { Features = features.Row(i).ToArray(), Label = (uint)labels[i] });
        return mlContext.Data.LoadFromEnumerable(rows.ToList(), schema);
    }

    private static void CopyAnnotation<T>(DataViewSchema.Annotations annotations, DataViewSchema.Column kind, SchemaDefinition.Column target)
    {
        T value = default!;
        annotations.GetValue(kind.Name, ref value);
        target.AddAnnotation(kind.Name, value, kind.Type);
    }

    private sealed class KeyedRow
    {
        public float[] Features { get; set; } = [];
        public uint Label { get; set; }
    }
}
