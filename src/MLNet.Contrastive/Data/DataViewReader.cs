using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace MLNet.Contrastive.Data;

/// <summary>Reads an <see cref="IDataView"/> with an image (MLImage) or image-path (text) column.</summary>
internal static class DataViewReader
{
    public static ImageStore Read(MLContext mlContext, IDataView data, string imageColumnName, string? labelColumnName,
        ImageLoadOptions options)
    {
        options.Validate();
        var imageColumn = data.Schema.GetColumnOrNull(imageColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(imageColumnName), $"Could not find input column '{imageColumnName}'");
        if (labelColumnName is not null && data.Schema.GetColumnOrNull(labelColumnName) is null)
            throw new ArgumentOutOfRangeException(nameof(labelColumnName), $"Could not find input column '{labelColumnName}'");

        var labelTexts = labelColumnName is null ? null : ReadText(mlContext, data, labelColumnName);
        if (imageColumn.Type is TextDataViewType)
            return ImageDecoding.FromFiles(ReadText(mlContext, data, imageColumnName), labelTexts, options);
        if (imageColumn.Type is not ImageDataViewType)
            throw new ArgumentOutOfRangeException(nameof(imageColumnName),
                $"Schema mismatch for input column '{imageColumnName}': expected image or text (an image path), got {imageColumn.Type}");

        var taken = data.Schema.Select(c => c.Name).ToHashSet();
        var pixelsColumn = ColumnNames.Unused(ImageDecoding.PixelsColumn, taken);
        var chain = ImagePreprocessing.Chain(mlContext, imageColumnName, pixelsColumn, options.Height, options.Width,
            options.Channels, asFloat: false, taken).Chain.Fit(data);
        using var pixels = new MemoryStream();
        ImageDecoding.CopyPixels(chain.Transform(data), pixels, pixelsColumn);
        var count = (int)(pixels.Length / (options.Channels * options.Height * options.Width));
        if (count == 0) throw new ArgumentException($"The data view's column '{imageColumnName}' holds no images (empty dataset).", nameof(data));
        var (labels, names) = ImageDecoding.IndexLabels(labelTexts);
        return new ImageStore(pixels.ToArray(), options.Channels, options.Height, options.Width, labels, names,
            Enumerable.Range(0, count).Select(i => $"{imageColumnName}#{i}").ToArray(), []);
    }

    /// <summary>A column's values as text: text as is, keys through their values, numbers converted.</summary>
    internal static List<string> ReadText(MLContext mlContext, IDataView data, string columnName)
    {
        var type = data.Schema[columnName].Type;
        if (type is not TextDataViewType)
        {
            if (type is KeyDataViewType) data = mlContext.Transforms.Conversion.MapKeyToValue(columnName).Fit(data).Transform(data);
            if (data.Schema[columnName].Type is not TextDataViewType)
                data = mlContext.Transforms.Conversion.ConvertType(columnName, outputKind: DataKind.String).Fit(data).Transform(data);
        }
        return data.GetColumn<ReadOnlyMemory<char>>(columnName).Select(m => m.ToString()).ToList();
    }
}
