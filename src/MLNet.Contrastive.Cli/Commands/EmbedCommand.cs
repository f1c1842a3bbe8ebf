using System.CommandLine;
using System.Globalization;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>embed</c>: one CSV row per image: source, label (if any), then the D embedding values.</summary>
internal static class EmbedCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The folder pretrain wrote, or its model.zip (encoder.onnx beside it).", Required = true };
        var data = new Option<string>("--data") { Description = "Image folder or IDX images file.", Required = true };
        var labels = new Option<string?>("--labels") { Description = "IDX labels for IDX images (optional)." };
        var output = new Option<string>("--out") { Description = "CSV file to write.", DefaultValueFactory = _ => "embeddings.csv" };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per ONNX Runtime call.", DefaultValueFactory = _ => 256 };
        var cuda = new Option<bool>("--cuda") { Description = "Use ONNX Runtime's CUDA execution provider when available." };
        var command = new Command("embed", "Write the embedding of every image to a CSV file.") { model, data, labels, output, batchSize, cuda };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var files = RunFolder.FindModel(parse.GetValue(model)!);
            using var embedder = new ImageEmbedder(files.EncoderOnnx,
                new ImageEmbedderOptions { BatchSize = parse.GetValue(batchSize), UseCuda = parse.GetValue(cuda), Log = Console.WriteLine });
            var (channels, height, width) = embedder.InputShape;
            var store = ImageStore.Load(parse.GetValue(data)!, parse.GetValue(labels), new ImageLoadOptions { Channels = channels, Height = height, Width = width });
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var embeddings = embedder.Embed(store);
            var seconds = clock.Elapsed.TotalSeconds;

            var path = parse.GetValue(output)!;
            using (var csv = new StreamWriter(path))
            {
                csv.WriteLine("source" + (store.Labels is null ? "" : ",label") + string.Concat(Enumerable.Range(0, embeddings.Dimension).Select(d => $",e{d}")));
                for (var i = 0; i < store.Count; i++)
                {
                    csv.Write(Quote(store.Sources[i]));
                    if (store.Labels is not null) csv.Write("," + Quote(store.LabelNames![store.Labels[i]]));
                    foreach (var v in embeddings.Row(i)) csv.Write("," + v.ToString("R", CultureInfo.InvariantCulture));
                    csv.WriteLine();
                }
            }
            Console.WriteLine($"Wrote {store.Count:N0} {embeddings.Dimension}-d embeddings to {path} ({store.Count / seconds:F0} images/s on {embedder.ExecutionProvider}).");
            return 0;
        }));
        return command;
    }

    internal static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n']) < 0 ? field : "\"" + field.Replace("\"", "\"\"") + "\"";
}
