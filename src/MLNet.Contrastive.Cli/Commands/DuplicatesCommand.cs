using System.CommandLine;
using System.Diagnostics;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Selection;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>duplicates</c>: groups of near-identical images (embedding cosine similarity at or above a threshold).</summary>
internal static class DuplicatesCommand
{
    /// <summary>Groups shown on the HTML page (the text file lists them all).</summary>
    private const int PageGroups = 200;

    public static Command Create()
    {
        var model = EmbeddedImages.ModelOption();
        var data = new Option<string>("--data") { Description = "Images: a folder or an IDX images file.", Required = true };
        var threshold = new Option<double>("--threshold")
        {
            Description = "Cosine similarity of two embeddings at or above which the images count as near-identical.", DefaultValueFactory = _ => NearDuplicates.DefaultThreshold,
        };
        var pixelThreshold = new Option<double>("--pixel-threshold")
        {
            Description = "Also require this correlation of the two images' pixels (at the encoder's input size); 0 compares embeddings only.",
            DefaultValueFactory = _ => NearDuplicates.DefaultPixelThreshold,
        };
        var layoutTolerance = new Option<double>("--layout-tolerance")
        {
            Description = "With --pixel-threshold: also require the two images' 7 × 7 layouts (cell means) to differ nowhere by more than this fraction of the pixel range.",
            DefaultValueFactory = _ => NearDuplicates.DefaultLayoutTolerance,
        };
        var output = new Option<string>("--out") { Description = "File to write: one group per line, its images tab-separated; an HTML page goes beside it.", DefaultValueFactory = _ => "duplicates.txt" };
        var batchSize = EmbeddedImages.BatchSizeOption();
        var cuda = EmbeddedImages.CudaOption();
        var command = new Command("duplicates", "List groups of near-identical images.") { model, data, threshold, pixelThreshold, layoutTolerance, output, batchSize, cuda };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var (path, dataPath) = (parse.GetValue(output)!, parse.GetValue(data)!);
            using var embedded = EmbeddedImages.Open(parse, model, batchSize, cuda);
            var (images, embeddings) = embedded.Load(dataPath);
            var clock = Stopwatch.StartNew();
            var pixels = parse.GetValue(pixelThreshold);
            var layout = parse.GetValue(layoutTolerance);
            var groups = pixels > 0 ? NearDuplicates.Find(embeddings, images, parse.GetValue(threshold), pixels, layout) : NearDuplicates.Find(embeddings, parse.GetValue(threshold));
            var fact = $"{groups.Count:N0} groups holding {groups.Sum(g => g.Length):N0} of {images.Count:N0} images at cosine similarity ≥ {parse.GetValue(threshold)}" +
                       (pixels > 0 ? $", pixel correlation ≥ {pixels} and layout difference ≤ {layout}" : "") + " " +
                       $"({clock.Elapsed.TotalSeconds:F1} s).";
            File.WriteAllLines(path, groups.Select(g => string.Join('\t', g.Select(i => EmbeddedImages.Name(images, dataPath, i)))));
            var html = Path.ChangeExtension(path, ".html");
            ImageGallery.Write(html, "Near-duplicate images", groups.Count > PageGroups ? [fact, $"The first {PageGroups} groups are shown; {path} lists all."] : [fact],
                images, groups.Take(PageGroups).Select((g, n) => new ImageGallery.Row($"Group {n + 1} ({g.Length} images)",
                    g.Select(i => (i, SelectCommand.Caption(images, dataPath, i))).ToList())).ToList());
            Console.WriteLine(fact);
            Console.WriteLine($"Wrote {path} and {html}.");
            return 0;
        }));
        return command;
    }
}
