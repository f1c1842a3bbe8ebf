using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace MLNet.Contrastive.Data;

/// <summary>
/// The one image pre-processing chain shared by training data and scoring: ML.NET's ResizeImages (Fill,
/// which samples nearest), ConvertToGrayscale for one channel, ExtractPixels in planar C×H×W order.
/// Training reads pixels through this exact chain so that the fitted ML.NET stage sees what the encoder saw.
/// </summary>
internal static class ImagePreprocessing
{
    /// <summary>
    /// ResizeImages → [ConvertToGrayscale] → ExtractPixels from <paramref name="imageColumn"/> (MLImage) to
    /// <paramref name="pixelsColumn"/>: a vector of C·H·W values, planar (all of channel 0, then channel 1, …),
    /// R, G, B order; bytes 0–255 when <paramref name="asFloat"/> is false, else floats 0–255. The intermediate image
    /// columns get names that are not in <paramref name="taken"/> (which receives them), so no input column is hidden;
    /// <c>Helpers</c> lists them for dropping.
    /// </summary>
    public static (IEstimator<ITransformer> Chain, IReadOnlyList<string> Helpers) Chain(MLContext mlContext, string imageColumn, string pixelsColumn,
        int height, int width, int channels, bool asFloat, ISet<string> taken)
    {
        var resized = ColumnNames.Unused("ResizedImage", taken);
        IEstimator<ITransformer> chain = mlContext.Transforms.ResizeImages(resized, width, height, imageColumn, ImageResizingEstimator.ResizingKind.Fill);
        var helpers = new List<string> { resized };
        if (channels == 1)
        {
            var gray = ColumnNames.Unused("GrayImage", taken);
            chain = chain.Append(mlContext.Transforms.ConvertToGrayscale(gray, resized));
            helpers.Add(gray);
        }
        return (chain.Append(mlContext.Transforms.ExtractPixels(pixelsColumn, helpers[^1],
            channels == 1 ? ImagePixelExtractingEstimator.ColorBits.Red : ImagePixelExtractingEstimator.ColorBits.Rgb,
            ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false, outputAsFloatArray: asFloat)), helpers);
    }
}
