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
            CheckEntries(path);
            DataViewSchema? schema = null;
            var model = WithFreshOnnxFileName(() => mlContext.Model.Load(path, out schema));
            inputSchema = schema!;
            return model;
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or IOException or InvalidOperationException
                                      or ArgumentException or KeyNotFoundException or NotSupportedException or System.Reflection.TargetInvocationException)
        {
            // ML.NET loads each transform by reflection, so the cause sits under TargetInvocationExceptions (ONNX Runtime's
            // error for a damaged graph, a missing assembly): name the innermost one.
            throw new InvalidDataException($"{path}: not a readable ML.NET model ({e.GetBaseException().Message.Split('\n')[0].TrimEnd('.')}).", e);
        }
    }

    /// <summary>
    /// Runs <paramref name="load"/> (an ML.NET model load) again when it failed only because of the name ML.NET gave an
    /// embedded ONNX model's temporary file. ML.NET writes the graph to <c>Path.GetRandomFileName()</c> (eight characters,
    /// a dot, three more from 32); one name in 32,768 ends in ".ort", which ONNX Runtime reads as its own flatbuffer format
    /// and refuses: "ORT model verification failed" (seen once in ten runs of the test suite). Another load draws another
    /// name; a plain ML.NET app that loads these model.zip files can do the same.
    /// </summary>
    public static T WithFreshOnnxFileName<T>(Func<T> load)
    {
        ArgumentNullException.ThrowIfNull(load);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return load();
            }
            catch (Exception e) when (attempt < 3 && IsOrtFileNameFailure(e))
            {
            }
        }
    }

    /// <summary>Whether <paramref name="e"/> is ONNX Runtime refusing a protobuf model read as its ORT format (a file named *.ort).</summary>
    internal static bool IsOrtFileNameFailure(Exception e)
    {
        for (Exception? cause = e; cause is not null; cause = cause.InnerException)
            if (cause.Message.Contains("ORT model verification failed", StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>
    /// Compares each entry's CRC-32 with the one the zip records: ML.NET's loader reads entries without checking, so a
    /// damaged embedded ONNX graph could load as other weights.
    /// </summary>
    private static void CheckEntries(string path)
    {
        using var zip = System.IO.Compression.ZipFile.OpenRead(path);
        foreach (var entry in zip.Entries)
        {
            var crc = new System.IO.Hashing.Crc32();
            using (var stream = entry.Open()) crc.Append(stream);
            if (crc.GetCurrentHashAsUInt32() != entry.Crc32)
                throw new InvalidDataException($"its entry '{entry.FullName}' is damaged (CRC-32 mismatch)");
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

    /// <summary>
    /// Checks that an embedding stage (image paths in <paramref name="pathColumn"/>, "Embedding" out) applies the same
    /// encoder as <paramref name="embedder"/>: the first of <paramref name="images"/>, written to a temporary PNG, must
    /// get the same embedding from both (within 1e-3). Files from two runs side by side otherwise go unnoticed.
    /// </summary>
    public static void CheckSameEncoder(MLContext mlContext, string modelPath, ITransformer model, string pathColumn, string onnxPath,
        Onnx.ImageEmbedder embedder, Data.ImageStore images)
    {
        var first = images.Subset([0]);
        var expected = embedder.Embed(first).Row(0).ToArray();
        var png = Path.Combine(Path.GetTempPath(), $"mlnet-contrastive-check-{Guid.NewGuid():N}.png");
        try
        {
            using (var image = MLImage.CreateFromPixels(first.Width, first.Height, MLPixelFormat.Bgra32, first.Bgra(0))) image.Save(png);
            var actual = model.Transform(PathView(mlContext, [png], pathColumn)).GetColumn<VBuffer<float>>("Embedding").First().DenseValues().ToArray();
            if (actual.Length != expected.Length || actual.Zip(expected, (a, b) => Math.Abs(a - b)).Max() > 1e-3f)
                throw new InvalidDataException($"{modelPath} and {onnxPath} hold different encoders (files of two runs?); use the files of one run.");
        }
        finally
        {
            File.Delete(png);
        }
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
