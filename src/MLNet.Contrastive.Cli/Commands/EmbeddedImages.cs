using System.CommandLine;
using System.Diagnostics;
using Microsoft.ML;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>
/// What select, duplicates and similar share: the encoder of a run (its folder, model.zip or encoder.onnx), the images
/// read at the encoder's input size, and their embeddings through ONNX Runtime.
/// </summary>
internal sealed class EmbeddedImages : IDisposable
{
    public static Option<string> ModelOption() =>
        new("--model") { Description = "The folder pretrain wrote, its model.zip, or an encoder.onnx.", Required = true };

    public static Option<int> BatchSizeOption() => new("--batch-size") { Description = "Images per ONNX Runtime call.", DefaultValueFactory = _ => 256 };

    public static Option<bool> CudaOption() => new("--cuda") { Description = "Use ONNX Runtime's CUDA execution provider when available." };

    public ImageEmbedder Embedder { get; }

    private EmbeddedImages(ImageEmbedder embedder) => Embedder = embedder;

    /// <summary>The encoder of <paramref name="model"/>: an .onnx file as given, else the encoder.onnx of the run.</summary>
    public static string EncoderPath(string model) =>
        File.Exists(model) && model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? model : RunFolder.FindModel(model).EncoderOnnx;

    public static EmbeddedImages Open(ParseResult parse, Option<string> model, Option<int> batchSize, Option<bool> cuda) =>
        new(new ImageEmbedder(EncoderPath(parse.GetValue(model)!),
            new ImageEmbedderOptions { BatchSize = parse.GetValue(batchSize), UseCuda = parse.GetValue(cuda), Log = Console.WriteLine }));

    private ImageLoadOptions LoadOptions
    {
        get
        {
            var (channels, height, width) = Embedder.InputShape;
            return new ImageLoadOptions { Channels = channels, Height = height, Width = width };
        }
    }

    /// <summary>The images of <paramref name="data"/> (folder or IDX file) at the encoder's input size, and their embeddings (timed, printed).</summary>
    public (ImageStore Images, Embeddings Embeddings) Load(string data)
    {
        var images = ImageStore.Load(data, null, LoadOptions);
        var clock = Stopwatch.StartNew();
        var embeddings = Embedder.Embed(images);
        Console.WriteLine($"Embedded {images.Count:N0} images ({embeddings.Dimension}-d) in {clock.Elapsed.TotalSeconds:F1} s on {Embedder.ExecutionProvider}.");
        return (images, embeddings);
    }

    /// <summary>One image: a file, or image i of an IDX file written <c>file#i</c>.</summary>
    public ImageStore LoadOne(string image)
    {
        if (File.Exists(image) && ImageDecoder.IsImageFile(image))
        {
            var mlContext = new MLContext();
            return ImageStore.FromDataView(mlContext, SavedModel.PathView(mlContext, [image], "ImagePath"), "ImagePath", null, LoadOptions);
        }
        var hash = image.LastIndexOf('#');
        if (hash > 0 && int.TryParse(image[(hash + 1)..], out var index) && File.Exists(image[..hash]))
        {
            var all = ImageStore.Load(image[..hash], null, LoadOptions);
            if (index < 0 || index >= all.Count) throw new ArgumentException($"--query {image}: the IDX file holds images 0 to {all.Count - 1}.");
            return all.Subset([index]);
        }
        throw new FileNotFoundException($"--query {image}: no such image file (or IDX file#index).");
    }

    /// <summary>How a row is named in output files: its index for an IDX file, else its path.</summary>
    public static string Name(ImageStore images, string data, int row) => File.Exists(data) ? row.ToString(System.Globalization.CultureInfo.InvariantCulture) : images.Sources[row];

    public void Dispose() => Embedder.Dispose();
}
