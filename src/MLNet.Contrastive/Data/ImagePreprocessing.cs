using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace MLNet.Contrastive.Data;

/// <summary>
/// The one image pre-processing chain shared by training data and scoring: ML.NET's ResizeImages (Fill,
/// which samples nearest), ConvertToGrayscale for one channel, ExtractPixels in planar C×H×W order.
/// Training reads pixels through this exact chain so that the fitted ML.NET stage sees what the encoder saw.
/// </summary>
public static class ImagePreprocessing
{
    /// <summary>Column names used inside the chain.</summary>
    public const string ResizedColumn = "ResizedImage", GrayColumn = "GrayImage";

    /// <summary>
    /// ResizeImages → [ConvertToGrayscale] → ExtractPixels from <paramref name="imageColumn"/> (MLImage) to
    /// <paramref name="pixelsColumn"/>: a vector of C·H·W values, planar (all of channel 0, then channel 1, …),
    /// R, G, B order; bytes 0–255 when <paramref name="asFloat"/> is false, else floats 0–255.
    /// </summary>
    public static IEstimator<ITransformer> Chain(MLContext mlContext, string imageColumn, string pixelsColumn,
        int height, int width, int channels, bool asFloat)
    {
        IEstimator<ITransformer> chain = mlContext.Transforms.ResizeImages(ResizedColumn, width, height, imageColumn,
            ImageResizingEstimator.ResizingKind.Fill);
        var pixelSource = ResizedColumn;
        if (channels == 1)
        {
            chain = chain.Append(mlContext.Transforms.ConvertToGrayscale(GrayColumn, ResizedColumn));
            pixelSource = GrayColumn;
        }
        return chain.Append(mlContext.Transforms.ExtractPixels(pixelsColumn, pixelSource,
            channels == 1 ? ImagePixelExtractingEstimator.ColorBits.Red : ImagePixelExtractingEstimator.ColorBits.Rgb,
            ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false, outputAsFloatArray: asFloat));
    }
}
