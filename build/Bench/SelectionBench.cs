using System.Diagnostics;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Selection;
using Microsoft.ML;
using SkiaSharp;

/// <summary>
/// The selection, duplicate and index figures of docs/selection.md, each printed as Markdown:
///   Bench selection --data-dir D --run R [--pool N] [--budgets 10,20,50,100] [--seeds 5] [--strategies random,kmeans,…] [--delta δ] [--whiten C]
///       linear-probe accuracy (mean ± sd over seeds) with the labelled rows chosen by each strategy from the first N
///       training images' embeddings, and each strategy's selection time;
///   Bench duplicates --data-dir D --run R [--planted 300] [--thresholds 0.9,…] [--pixel-threshold 0.9] [--layout-tolerance 0.07]
///       precision and recall of planted exact, resized and JPEG re-encoded copies among the training images, by threshold;
///   Bench index --data-dir D --run R [--queries 1000]
///       the USearch index's recall@10 against exact search, build and query time.
/// </summary>
internal static class SelectionBench
{
    public static int Selection(MLContext mlContext, ImageStore train, ImageStore test, Func<string, string?, string> arg)
    {
        using var embedder = Embedder(arg);
        var pool = int.Parse(arg("--pool", train.Count.ToString()));
        var trainFeatures = embedder.Embed(pool < train.Count ? train.Subset(Enumerable.Range(0, pool).ToArray()) : train);
        var testFeatures = embedder.Embed(test);
        var budgets = arg("--budgets", "10,20,50,100").Split(',').Select(int.Parse).ToList();
        var seeds = int.Parse(arg("--seeds", "5"));
        var settings = new LabelSelectionOptions
        {
            Delta = arg("--delta", "") is { Length: > 0 } delta ? double.Parse(delta) : null,
            WhitenedComponents = int.Parse(arg("--whiten", new LabelSelectionOptions().WhitenedComponents.ToString())),
        };
        var strategies = arg("--strategies", "random,kmeans,typiclust,probcover,kcenter").Split(',').Select(s => LabelSelection.ParseStrategy(s)).ToList();
        Console.WriteLine($"| Strategy | {string.Join(" | ", budgets.Select(b => $"{b} labels"))} | seconds per selection (at {budgets[^1]}) |");
        Console.WriteLine($"|---|{string.Concat(budgets.Select(_ => "---:|"))}---:|");
        foreach (var strategy in strategies)
        {
            var cells = new List<string>();
            var seconds = 0.0;
            foreach (var budget in budgets)
            {
                var accuracies = new List<double>();
                var clock = Stopwatch.StartNew();
                LabelEfficiency.ProbeSelected(mlContext, strategy.ToString(), trainFeatures, testFeatures, budget, strategy, seed: 0, samples: seeds, accuracies, settings);
                seconds = clock.Elapsed.TotalSeconds / seeds;
                var mean = accuracies.Average();
                var sd = Math.Sqrt(accuracies.Sum(a => (a - mean) * (a - mean)) / Math.Max(1, accuracies.Count - 1));
                cells.Add($"{100 * mean:F1} ± {100 * sd:F1}");
                Console.Error.WriteLine($"[bench] {strategy} {budget}: {string.Join(" ", accuracies.Select(a => $"{100 * a:F1}"))}");
            }
            Console.WriteLine($"| {strategy} | {string.Join(" | ", cells)} | {seconds:F1} (with the probe) |");
        }
        Console.WriteLine();
        Console.WriteLine($"Pool: the first {trainFeatures.Count:N0} training images' {trainFeatures.Dimension}-d embeddings (labels hidden from the strategies); " +
                          $"probe: ML.NET LbfgsMaximumEntropy on the chosen images only; test: {test.Count:N0} images; {seeds} seeds (0–{seeds - 1}) per cell.");
        return 0;
    }

    public static int Duplicates(ImageStore train, Func<string, string?, string> arg)
    {
        using var embedder = Embedder(arg);
        var planted = int.Parse(arg("--planted", "300"));
        var (size, n) = (train.ImageSize, train.Count);
        var pixels = new byte[(long)(n + planted) * size];
        train.Images(0, n).CopyTo(pixels);
        var pairs = new List<(int Original, int Copy, string Kind)>();
        var random = new Random(0);
        for (var p = 0; p < planted; p++)
        {
            var original = random.Next(n);
            var kind = (p % 3) switch { 0 => "exact", 1 => "resized", _ => "jpeg" };
            var copy = kind switch
            {
                "exact" => train.Image(original).ToArray(),
                "resized" => Resized(train.Image(original), train.Width, train.Height),
                _ => Jpeg(train.Image(original), train.Width, train.Height),
            };
            copy.CopyTo(pixels, (long)(n + p) * size);
            pairs.Add((original, n + p, kind));
        }
        var store = new ImageStore(pixels, train.Channels, train.Height, train.Width, null, null,
            Enumerable.Range(0, n + planted).Select(i => i.ToString()).ToArray(), []);
        var clock = Stopwatch.StartNew();
        var embeddings = embedder.Embed(store);
        var embedSeconds = clock.Elapsed.TotalSeconds;
        var plantedRows = pairs.SelectMany(p => new[] { p.Original, p.Copy }).ToHashSet();
        var pixelThreshold = double.Parse(arg("--pixel-threshold", "0"));
        var layoutTolerance = double.Parse(arg("--layout-tolerance", NearDuplicates.DefaultLayoutTolerance.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (pixelThreshold > 0) Console.WriteLine($"Pairs confirmed by a pixel correlation ≥ {pixelThreshold} and 7 × 7 layouts within {layoutTolerance}.");
        // The reported groups with an image that was not planted, one per line, for a look at what the measure counts as false.
        var unplantedOut = arg("--unplanted-out", "");
        Console.WriteLine("| Threshold | recall (exact / resized / JPEG) | precision | groups | images in groups | seconds |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|");
        foreach (var threshold in arg("--thresholds", "0.9,0.95,0.97,0.98,0.99").Split(',').Select(double.Parse))
        {
            clock.Restart();
            var groups = pixelThreshold > 0 ? NearDuplicates.Find(embeddings, store, threshold, pixelThreshold, layoutTolerance) : NearDuplicates.Find(embeddings, threshold);
            var seconds = clock.Elapsed.TotalSeconds;
            var groupOf = groups.SelectMany((g, i) => g.Select(r => (r, i))).ToDictionary(x => x.r, x => x.i);
            bool Found((int Original, int Copy, string Kind) p) => groupOf.TryGetValue(p.Original, out var a) && groupOf.TryGetValue(p.Copy, out var b) && a == b;
            string Recall(string kind) => $"{pairs.Where(p => p.Kind == kind).Average(p => Found(p) ? 1.0 : 0.0):F3}";
            // Precision: of the images a group reports as another's duplicate, those planted (an original or its copy).
            var reported = groups.Sum(g => g.Length);
            var precision = reported == 0 ? 1 : groups.Sum(g => g.Count(plantedRows.Contains)) / (double)reported;
            if (unplantedOut.Length > 0)
                File.WriteAllLines($"{unplantedOut}.{threshold}.txt", groups.Where(g => !g.All(plantedRows.Contains)).Select(g => string.Join(' ', g)));
            Console.WriteLine($"| {threshold} | {Recall("exact")} / {Recall("resized")} / {Recall("jpeg")} | {precision:F3} | {groups.Count:N0} | {reported:N0} | {seconds:F1} |");
        }
        Console.WriteLine();
        Console.WriteLine($"{n:N0} training images plus {planted} planted copies of random ones (a third each: exact; resized to 42 px and back, bilinear; " +
                          $"JPEG quality 75); embedded in {embedSeconds:F0} s. Precision counts every image in a reported group that is not a planted original or copy as a false report.");
        return 0;
    }

    public static int Index(ImageStore train, Func<string, string?, string> arg)
    {
        using var embedder = Embedder(arg);
        var embeddings = embedder.Embed(train);
        var queries = int.Parse(arg("--queries", "1000"));
        var rows = Enumerable.Range(0, queries).Select(q => q * (embeddings.Count / queries)).ToArray();
        var queryRows = new Embeddings(rows.SelectMany(r => embeddings.Row(r).ToArray()).ToArray(), rows.Length, embeddings.Dimension, null);
        var clock = Stopwatch.StartNew();
        var exact = SimilarityIndex.Exact(embeddings, queryRows, 10);
        var exactMs = clock.Elapsed.TotalMilliseconds / queries;
        clock.Restart();
        using var index = SimilarityIndex.Build(embeddings, Enumerable.Range(0, embeddings.Count).Select(i => i.ToString()).ToList());
        var buildSeconds = clock.Elapsed.TotalSeconds;
        index.Search(queryRows.Row(0), 10);
        clock.Restart();
        var found = Enumerable.Range(0, queries).Select(q => index.Search(queryRows.Row(q), 10).Rows).ToArray();
        var queryMs = clock.Elapsed.TotalMilliseconds / queries;
        var recall = found.Zip(exact, (a, e) => a.Intersect(e).Count()).Sum() / (10.0 * queries);
        Console.WriteLine("| Vectors | recall@10 | build | query (USearch) | query (exact, batched) |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| {embeddings.Count:N0} × {embeddings.Dimension} | {recall:F3} | {buildSeconds:F0} s | {queryMs:F2} ms | {exactMs:F2} ms |");
        return 0;
    }

    private static ImageEmbedder Embedder(Func<string, string?, string> arg) =>
        new(Path.Combine(arg("--run", null), "encoder.onnx"), new ImageEmbedderOptions { Threads = int.Parse(arg("--threads", "2")), Log = _ => { } });

    private static byte[] Resized(ReadOnlySpan<byte> gray, int width, int height)
    {
        using var bitmap = Bitmap(gray, width, height);
        using var larger = bitmap.Resize(new SKImageInfo(width * 3 / 2, height * 3 / 2, SKColorType.Gray8, SKAlphaType.Opaque), new SKSamplingOptions(SKFilterMode.Linear));
        using var back = larger.Resize(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque), new SKSamplingOptions(SKFilterMode.Linear));
        return back.Bytes;
    }

    private static byte[] Jpeg(ReadOnlySpan<byte> gray, int width, int height)
    {
        using var bitmap = Bitmap(gray, width, height);
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 75);
        using var decoded = SKBitmap.Decode(data);
        using var grey = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        decoded.CopyTo(grey, SKColorType.Gray8);
        return grey.Bytes;
    }

    private static SKBitmap Bitmap(ReadOnlySpan<byte> gray, int width, int height)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(gray.ToArray(), 0, bitmap.GetPixels(), gray.Length);
        return bitmap;
    }
}
