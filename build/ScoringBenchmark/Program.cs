// Scoring throughput and parity for a folder written by `mlnet-contrastive pretrain`:
//   ScoringBenchmark <run folder> <IDX images.gz> [count]
// Writes the first `count` images as PNG files, then times the ML.NET embedding stage (model.zip, row by row,
// from image paths) and ImageEmbedder (encoder.onnx, batch 256), and compares their outputs and TorchSharp's.
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

var (run, idx, count) = (args[0], args[1], args.Length > 2 ? int.Parse(args[2]) : 1000);
TorchRuntime.SetThreads(Environment.ProcessorCount);
var info = Checkpoint.ReadInfo(Path.Combine(run, "checkpoint.bin"));
var load = new ImageLoadOptions { Channels = info.Channels, Height = info.Height, Width = info.Width };
var source = ImageStore.Load(idx, null, load).Subset(Enumerable.Range(0, count).ToArray());

var folder = Directory.CreateTempSubdirectory("mlnc-bench-").FullName;
try
{
    var paths = new List<string>();
    for (var i = 0; i < count; i++)
    {
        var plane = source.Pixels.AsSpan(i * source.ImageSize, source.ImageSize);
        var bgra = new byte[info.Height * info.Width * 4];
        for (var p = 0; p < info.Height * info.Width; p++)
            (bgra[p * 4], bgra[p * 4 + 1], bgra[p * 4 + 2], bgra[p * 4 + 3]) = info.Channels == 1
                ? (plane[p], plane[p], plane[p], (byte)255)
                : (plane[2 * info.Height * info.Width + p], plane[info.Height * info.Width + p], plane[p], (byte)255);
        using var image = MLImage.CreateFromPixels(info.Width, info.Height, MLPixelFormat.Bgra32, bgra);
        paths.Add(Path.Combine(folder, $"{i:D5}.png"));
        image.Save(paths[^1]);
    }

    var mlContext = new MLContext();
    var model = SavedModel.Load(mlContext, Path.Combine(run, "model.zip"), out var schema);
    var column = SavedModel.PathColumn(run, schema, model, "Embedding");
    var definition = SchemaDefinition.Create(typeof(PathRow));
    definition[nameof(PathRow.ImagePath)].ColumnName = column;
    var view = mlContext.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p }).ToList(), definition);
    model.Transform(view).GetColumn<VBuffer<float>>("Embedding").Take(10).ToList();  // warm-up
    var clock = Stopwatch.StartNew();
    var stage = model.Transform(view).GetColumn<VBuffer<float>>("Embedding").Select(v => v.DenseValues().ToArray()).ToList();
    var stageRate = count / clock.Elapsed.TotalSeconds;

    clock.Restart();
    var decoded = ImageStore.FromDataView(mlContext, view, column, null, load);
    var decodeRate = count / clock.Elapsed.TotalSeconds;
    using var embedder = new ImageEmbedder(Path.Combine(run, "encoder.onnx"), new ImageEmbedderOptions { BatchSize = 256, Log = _ => { } });
    embedder.Embed(decoded.Subset(Enumerable.Range(0, Math.Min(256, count)).ToArray()));  // warm-up
    clock.Restart();
    var batched = embedder.Embed(decoded);
    var batchRate = count / clock.Elapsed.TotalSeconds;
    var torch = Embeddings.FromEncoder(Checkpoint.LoadEncoder(Path.Combine(run, "checkpoint.bin")), decoded);

    float Max(Func<int, int, float> difference) =>
        Enumerable.Range(0, count).Max(i => Enumerable.Range(0, batched.Dimension).Max(d => difference(i, d)));
    Console.WriteLine($"images: {count} ({info.Channels}×{info.Height}×{info.Width}), encoder D = {batched.Dimension}, {Environment.ProcessorCount} cores");
    Console.WriteLine($"ML.NET embedding stage (model.zip, row by row, from PNG paths): {stageRate:F0} images/s");
    Console.WriteLine($"ImageEmbedder (encoder.onnx, batch 256, decoded pixels): {batchRate:F0} images/s ({batchRate / stageRate:F1}× the stage); decoding the PNGs first: {decodeRate:F0} images/s");
    Console.WriteLine($"max |ML.NET stage − ImageEmbedder| = {Max((i, d) => Math.Abs(stage[i][d] - batched.Row(i)[d])):G3}");
    Console.WriteLine($"max |ImageEmbedder (ONNX Runtime) − TorchSharp eval forward| = {Max((i, d) => Math.Abs(batched.Row(i)[d] - torch.Row(i)[d])):G3}");
}
finally
{
    Directory.Delete(folder, recursive: true);
}

internal sealed class PathRow
{
    public string ImagePath { get; set; } = "";
}
