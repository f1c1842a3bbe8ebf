using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Selection;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>similar</c>: builds an on-disk nearest-neighbour index of images (USearch) and finds the images most like a query.</summary>
internal static class SimilarCommand
{
    public static Command Create()
    {
        var model = EmbeddedImages.ModelOption();
        var index = new Option<string>("--index") { Description = "Index folder: written when --data is given, else read.", Required = true };
        var data = new Option<string?>("--data") { Description = "Images to index (a folder or an IDX images file); omit to query an existing index." };
        var query = new Option<string?>("--query") { Description = "The image to find neighbours of: an image file, or IDX-file#index." };
        var k = new Option<int>("-k") { Description = "Neighbours to list.", DefaultValueFactory = _ => 10 };
        var batchSize = EmbeddedImages.BatchSizeOption();
        var cuda = EmbeddedImages.CudaOption();
        var command = new Command("similar", "Index images for similarity search (USearch, on disk) and list the images most similar to a query.")
            { model, index, data, query, k, batchSize, cuda };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var folder = parse.GetValue(index)!;
            if (parse.GetValue(data) is null && parse.GetValue(query) is null) throw new ArgumentException("Give --data (to build the index), --query (to search it), or both.");
            using var embedded = EmbeddedImages.Open(parse, model, batchSize, cuda);
            if (parse.GetValue(data) is { } dataPath)
            {
                var (images, embeddings) = embedded.Load(dataPath);
                var clock = Stopwatch.StartNew();
                using var built = SimilarityIndex.Build(embeddings, Enumerable.Range(0, images.Count).Select(i => AbsoluteName(images, dataPath, i)).ToList());
                built.Save(CommandRunner.OutputFolder(folder));
                Console.WriteLine($"Indexed {images.Count:N0} images in {clock.Elapsed.TotalSeconds:F1} s into {folder}.");
            }
            if (parse.GetValue(query) is not { } queryPath) return 0;

            using var opened = SimilarityIndex.Open(folder);
            var queryImage = embedded.LoadOne(queryPath);
            var vector = embedded.Embedder.Embed(queryImage);
            if (vector.Dimension != opened.Dimension)
                throw new ArgumentException($"--model: the encoder gives {vector.Dimension}-d embeddings but the index at {folder} holds {opened.Dimension}-d ones (built with another model).");
            var watch = Stopwatch.StartNew();
            var (rows, similarities) = opened.Search(vector.Row(0), parse.GetValue(k));
            var milliseconds = watch.Elapsed.TotalMilliseconds;
            for (var i = 0; i < rows.Length; i++)
                Console.WriteLine($"{similarities[i].ToString("F4", CultureInfo.InvariantCulture)}\t{opened.Sources[rows[i]]}");
            Console.WriteLine($"{rows.Length} neighbours among {opened.Count:N0} images in {milliseconds:F1} ms.");
            return 0;
        }));
        return command;
    }

    /// <summary>An image file's full path, or <c>IDX-file#index</c> (what --query takes back).</summary>
    private static string AbsoluteName(ImageStore images, string data, int row) =>
        File.Exists(data) ? $"{Path.GetFullPath(data)}#{row}" : Path.GetFullPath(images.Sources[row]);
}
