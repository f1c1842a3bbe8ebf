// Scores a folder of images with a model.zip saved by MLNet.Contrastive (an embedding stage, optionally followed
// by a linear probe, or a fine-tuned classifier), using ML.NET alone. Usage: ScoreInPlainMLNet <model.zip> <image folder> [out.csv]
// Writes each image's predicted label (when the model predicts one) and its embedding, its energy (a reconstruction
// energy stage) or its class scores (a fine-tuned classifier).
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ScoreInPlainMLNet <model.zip> <image folder> [out.csv]");
    return 2;
}
var mlContext = new MLContext();
// ML.NET writes the embedded ONNX graph to a temporary file named at random; one name in 32,768 ends in ".ort", which
// ONNX Runtime reads as its own format and refuses ("ORT model verification failed"): another load draws another name.
ITransformer Load(out DataViewSchema schema)
{
    for (var attempt = 1; ; attempt++)
    {
        try
        {
            return mlContext.Model.Load(args[0], out schema);
        }
        catch (Exception e) when (attempt < 3 && e.ToString().Contains("ORT model verification failed"))
        {
        }
    }
}
var model = Load(out var inputSchema);
// The model was saved with the schema it was trained on; its text column holds image paths.
var pathColumn = inputSchema.First(c => c.Type is TextDataViewType).Name;

var images = Directory.EnumerateFiles(args[1])
    .Where(f => new[] { ".png", ".jpg", ".jpeg", ".bmp" }.Contains(Path.GetExtension(f).ToLowerInvariant()))
    .Order(StringComparer.Ordinal).ToList();
var schema = SchemaDefinition.Create(typeof(ImageInput));
schema[nameof(ImageInput.Path)].ColumnName = pathColumn;
var data = mlContext.Data.LoadFromEnumerable(images.Select(path => new ImageInput { Path = path }), schema);
var scored = model.Transform(data);

var vectorColumn = new[] { "Embedding", "Energy" }.FirstOrDefault(c => scored.Schema.GetColumnOrNull(c) is not null) ?? "Score";
var embeddings = scored.GetColumn<VBuffer<float>>(vectorColumn).Select(v => v.DenseValues().ToArray()).ToList();
var predicted = scored.Schema.GetColumnOrNull("PredictedLabel") is { } label
    ? scored.GetColumn<ReadOnlyMemory<char>>(label.Name).Select(p => p.ToString()).ToList()
    : null;

using var output = args.Length > 2 ? new StreamWriter(args[2]) : Console.Out;
var dimension = embeddings.FirstOrDefault()?.Length ?? 0;
output.WriteLine("file" + (predicted is null ? "" : ",predicted_label") + string.Concat(Enumerable.Range(0, dimension).Select(d => $",e{d}")));
for (var i = 0; i < images.Count; i++)
    output.WriteLine(Path.GetFileName(images[i]) + (predicted is null ? "" : $",{predicted[i]}") + "," +
                     string.Join(",", embeddings[i].Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
Console.Error.WriteLine($"Scored {images.Count} images with {Path.GetFileName(args[0])} ({dimension}-d {vectorColumn}).");
return 0;

internal sealed class ImageInput
{
    public string Path { get; set; } = "";
}
