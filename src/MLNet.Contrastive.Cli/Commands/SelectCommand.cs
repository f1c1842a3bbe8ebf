using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Selection;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>select</c>: the images to label next, chosen from their embeddings; a list and an HTML page of them.</summary>
internal static class SelectCommand
{
    public static Command Create()
    {
        var model = EmbeddedImages.ModelOption();
        var data = new Option<string>("--data") { Description = "The unlabelled images: a folder or an IDX images file.", Required = true };
        var budget = new Option<int>("--budget") { Description = "How many images to choose.", Required = true };
        var strategy = new Option<string>("--strategy")
        {
            Description = "random, kmeans, typiclust, probcover or kcenter.", DefaultValueFactory = _ => new LabelSelectionOptions().Strategy.ToString().ToLowerInvariant(),
        };
        var labelled = new Option<string?>("--labelled") { Description = "A file of images already labelled (an earlier round's --out): one path, or IDX index, per line." };
        var delta = new Option<double?>("--delta") { Description = "probcover's ball radius (Euclidean between normalised embeddings, 0–2). Default: from cluster purity." };
        var whiten = new Option<int>("--whiten")
        {
            Description = "kmeans: cluster this many principal components of the embeddings, each scaled to unit variance; 0 clusters them as they are.",
            DefaultValueFactory = _ => new LabelSelectionOptions().WhitenedComponents,
        };
        var seed = CommonOptions.Seed("the strategy's random choices");
        var output = new Option<string>("--out") { Description = "File to write (one path, or IDX index, per line); an HTML page of the images goes beside it.", DefaultValueFactory = _ => "selection.txt" };
        var batchSize = EmbeddedImages.BatchSizeOption();
        var cuda = EmbeddedImages.CudaOption();
        var command = new Command("select", "Choose the images to label from their embeddings (TypiClust, ProbCover, k-center, k-means or random).")
            { model, data, budget, strategy, labelled, delta, whiten, seed, output, batchSize, cuda };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var chosenStrategy = LabelSelection.ParseStrategy(parse.GetValue(strategy)!, "--strategy");
            var path = parse.GetValue(output)!;
            var dataPath = parse.GetValue(data)!;
            using var embedded = EmbeddedImages.Open(parse, model, batchSize, cuda);
            var (images, embeddings) = embedded.Load(dataPath);
            var earlier = parse.GetValue(labelled) is { } file ? ReadLabelled(file, images, dataPath) : [];

            var clock = Stopwatch.StartNew();
            var chosen = LabelSelection.Select(embeddings, new LabelSelectionOptions
            {
                Strategy = chosenStrategy, Budget = parse.GetValue(budget), Labelled = earlier, Seed = parse.GetValue(seed), Delta = parse.GetValue(delta),
                WhitenedComponents = parse.GetValue(whiten), Log = Console.WriteLine,
            });
            var seconds = clock.Elapsed.TotalSeconds;
            File.WriteAllLines(path, chosen.Select(i => EmbeddedImages.Name(images, dataPath, i)));

            var facts = new List<string>
            {
                $"{chosen.Length:N0} of {images.Count:N0} images chosen by {chosenStrategy} in {seconds:F1} s" +
                (earlier.Length > 0 ? $", adding to {earlier.Length:N0} already labelled" : "") + ".",
            };
            if (images.Labels is { } classes)
                facts.Add($"Classes covered (from the folder names): {chosen.Select(i => classes[i]).Distinct().Count()} of {images.LabelNames!.Count}.");
            var html = Path.ChangeExtension(path, ".html");
            ImageGallery.Write(html, $"Images to label: {chosenStrategy}", facts, images,
                chosen.Chunk(10).Select((row, r) => new ImageGallery.Row($"{10 * r + 1}–{10 * r + row.Length}",
                    row.Select(i => (i, Caption(images, dataPath, i))).ToList())).ToList());
            foreach (var fact in facts) Console.WriteLine(fact);
            Console.WriteLine($"Wrote {path} and {html}.");
            return 0;
        }));
        return command;
    }

    /// <summary>A short caption: the file name (and class folder), or the IDX index.</summary>
    internal static string Caption(ImageStore images, string data, int row) =>
        File.Exists(data) ? $"#{row}" : Path.GetFileName(images.Sources[row]) + (images.Labels is { } l ? $" ({images.LabelNames![l[row]]})" : "");

    /// <summary>The rows named in <paramref name="file"/>: IDX indices, or image paths as the folder lists them (or relative to it).</summary>
    internal static int[] ReadLabelled(string file, ImageStore images, string data)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"--labelled {file}: file not found.");
        var rows = new Dictionary<string, int>(StringComparer.Ordinal);
        if (!File.Exists(data))
            for (var i = 0; i < images.Count; i++)
            {
                rows[images.Sources[i]] = i;
                rows[Path.GetFullPath(images.Sources[i])] = i;
            }
        return File.ReadLines(file).Select(line => line.Trim()).Where(line => line.Length > 0).Select(line =>
            File.Exists(data)
                ? int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < images.Count ? index
                    : throw new ArgumentException($"--labelled {file}: '{line}' is not an image number below {images.Count:N0}.")
                : rows.TryGetValue(line, out var row) || rows.TryGetValue(Path.GetFullPath(Path.Combine(data, line)), out row) ? row
                    : throw new ArgumentException($"--labelled {file}: '{line}' is not one of the images under {data}.")).Distinct().ToArray();
    }
}
