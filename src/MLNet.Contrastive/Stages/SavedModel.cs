using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Contrastive.Stages;

/// <summary>Loads and checks model.zip files written by this library (embedding stages, probe pipelines).</summary>
public static class SavedModel
{
    /// <summary>Loads an ML.NET model.zip, saying which file is bad and why when it cannot be read.</summary>
    public static ITransformer Load(MLContext mlContext, string path, out DataViewSchema inputSchema)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: model not found.", path);
        try
        {
            return mlContext.Model.Load(path, out inputSchema);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or IOException or InvalidOperationException
                                      or ArgumentException or KeyNotFoundException or NotSupportedException or System.Reflection.TargetInvocationException)
        {
            throw new InvalidDataException($"{path}: not a readable ML.NET model ({(e.InnerException ?? e).Message.Split('\n')[0].TrimEnd('.')}).", e);
        }
    }

    /// <summary>
    /// The model's image-path (text) input column, after checking that the model produces <paramref name="outputColumnName"/>
    /// ("Embedding" for an embedding stage, "PredictedLabel" for a probe pipeline).
    /// </summary>
    public static string PathColumn(string path, DataViewSchema inputSchema, ITransformer model, string outputColumnName)
    {
        var column = inputSchema.FirstOrDefault(c => c.Type is TextDataViewType).Name
            ?? throw new InvalidDataException($"{path}: the model takes no image-path (text) column; it is not an MLNet.Contrastive model.");
        if (model.GetOutputSchema(inputSchema).GetColumnOrNull(outputColumnName) is null)
            throw new InvalidDataException($"{path}: the model has no '{outputColumnName}' output column; it is not an MLNet.Contrastive model of that kind.");
        return column;
    }

    /// <summary>A view with one text column <paramref name="column"/> holding <paramref name="paths"/>: the input of a saved model.</summary>
    public static IDataView PathView(MLContext mlContext, IEnumerable<string> paths, string column)
    {
        var schema = SchemaDefinition.Create(typeof(PathRow));
        schema[nameof(PathRow.ImagePath)].ColumnName = column;
        return mlContext.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p }).ToList(), schema);
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }
}
