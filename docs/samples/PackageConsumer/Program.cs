// MLNet.Contrastive used as a package, with the CPU backends the application chose (TorchSharp-cpu,
// Microsoft.ML.OnnxRuntime): SimCLR pretraining and a linear probe in one ML.NET pipeline, saved as model.zip, loaded
// back into a new MLContext, and checked to give the same predictions and embeddings.
// Usage: PackageConsumer <folder with Fashion-MNIST's IDX .gz files> <work folder>
using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Stages;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: PackageConsumer <folder with train-images-idx3-ubyte.gz, ...> <work folder>");
    return 2;
}
var train = WriteImages(args[0], "train", 2000, Path.Combine(args[1], "train"));
var test = WriteImages(args[0], "t10k", 500, Path.Combine(args[1], "test"));

var mlContext = new MLContext(seed: 0);
var trainData = mlContext.Data.LoadFromEnumerable(train);
var testData = mlContext.Data.LoadFromEnumerable(test);
var pipeline = mlContext.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImageRow.ImagePath))
    .Append(mlContext.SelfSupervised().SimClr(outputColumnName: "Embedding", inputColumnName: "Image", epochs: 3))
    .Append(mlContext.SelfSupervised().LinearProbe(labelColumnName: nameof(ImageRow.Label), featureColumnName: "Embedding"));
var model = pipeline.Fit(trainData);
var modelPath = Path.Combine(args[1], "model.zip");
mlContext.Model.Save(model, trainData.Schema, modelPath);

// SavedModel.WithFreshOnnxFileName: loads again in the rare case ML.NET names the graph's temporary file *.ort.
var loaded = MLNet.Contrastive.Stages.SavedModel.WithFreshOnnxFileName(() => new MLContext().Model.Load(modelPath, out _));
var (labels, embeddings) = Score(model, testData);
var (loadedLabels, loadedEmbeddings) = Score(loaded, testData);
var accuracy = labels.Zip(test).Count(p => p.First == p.Second.Label) / (double)test.Count;
var difference = embeddings.Zip(loadedEmbeddings).Max(p => p.First.Zip(p.Second).Max(v => Math.Abs(v.First - v.Second)));
Console.WriteLine($"Pretrained, probed, saved {modelPath} ({new FileInfo(modelPath).Length / 1024} KiB) and loaded it: " +
                  $"test accuracy {accuracy:P1} on {test.Count} images; {embeddings[0].Length}-d embeddings; " +
                  $"loaded model's predictions {(labels.SequenceEqual(loadedLabels) ? "identical" : "DIFFERENT")}, " +
                  $"largest embedding difference {difference:G3}.");
// Ten classes: chance is 10 %.
return labels.SequenceEqual(loadedLabels) && difference <= 1e-4 && accuracy > 0.5 ? 0 : 1;

static (List<string> Labels, List<float[]> Embeddings) Score(ITransformer model, IDataView data)
{
    var scored = model.Transform(data);
    return (scored.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(l => l.ToString()).ToList(),
            scored.GetColumn<VBuffer<float>>("Embedding").Select(v => v.DenseValues().ToArray()).ToList());
}

// The first `count` images of an IDX pair as PNG files, the way a user's labelled images sit on disk.
static List<ImageRow> WriteImages(string idxFolder, string split, int count, string folder)
{
    var images = Inflate(Path.Combine(idxFolder, $"{split}-images-idx3-ubyte.gz"));
    var labels = Inflate(Path.Combine(idxFolder, $"{split}-labels-idx1-ubyte.gz"));
    var rows = new List<ImageRow>();
    for (var i = 0; i < count; i++)
    {
        var pixels = new byte[28 * 28 * 4];
        for (var p = 0; p < 28 * 28; p++)
        {
            var value = images[16 + i * 28 * 28 + p];
            (pixels[4 * p], pixels[4 * p + 1], pixels[4 * p + 2], pixels[4 * p + 3]) = (value, value, value, 255);
        }
        var label = labels[8 + i].ToString();
        var path = Path.Combine(folder, label, $"{i:D5}.png");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, pixels);
        image.Save(path);
        rows.Add(new ImageRow { ImagePath = path, Label = label });
    }
    return rows;
}

static byte[] Inflate(string path)
{
    using var gzip = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
    using var bytes = new MemoryStream();
    gzip.CopyTo(bytes);
    return bytes.ToArray();
}

internal sealed class ImageRow
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}
