using System.CommandLine;
using Microsoft.ML;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>
/// <c>demo</c>: pretrain SimCLR (or another --method) on Fashion-MNIST (the embedded sample, or the full set with
/// --full) and compare linear-probe and kNN accuracy of raw pixels, the randomly initialised encoder and the
/// pretrained encoder.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var minutes = new Option<double>("--minutes") { Description = "Pretraining budget in minutes.", DefaultValueFactory = _ => 2.0 };
        var full = new Option<bool>("--full") { Description = "Use the full Fashion-MNIST (60,000 + 10,000) instead of the embedded sample." };
        var dataDir = new Option<string>("--data-dir") { Description = "Folder with Fashion-MNIST's four IDX .gz files (for --full).", DefaultValueFactory = _ => SampleData.FullDatasetFolder };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per step.", DefaultValueFactory = _ => 256 };
        var seed = new Option<int>("--seed") { Description = "Seed.", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "CPU threads for libtorch.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var output = new Option<string?>("--out") { Description = "Optional folder for the checkpoint and training history." };
        var method = new Option<string>("--method") { Description = $"Method: {string.Join(", ", Methods.PretrainingMethods.Names)}.", DefaultValueFactory = _ => "simclr" };
        var mining = new Option<Objectives.TripletMining>("--mining") { Description = "Triplet negative mining: BatchHard or SemiHard.", DefaultValueFactory = _ => Objectives.TripletMining.SemiHard };

        var command = new Command("demo", "Pretrain SimCLR on Fashion-MNIST and compare it with raw pixels and a random encoder.")
        {
            minutes, full, dataDir, batchSize, seed, threads, output, method, mining,
        };
        command.SetAction(parse => CommandRunner.Run(() => Run(parse.GetValue(method)!, parse.GetValue(mining), parse.GetValue(minutes),
            parse.GetValue(full), parse.GetValue(dataDir)!, parse.GetValue(batchSize), parse.GetValue(seed), parse.GetValue(threads), parse.GetValue(output))));
        return command;
    }

    private static int Run(string method, Objectives.TripletMining mining, double minutes, bool full, string dataDir, int batchSize, int seed,
        int threads, string? outDir)
    {
        var loadOptions = new ImageLoadOptions { Height = 28, Width = 28, Channels = 1 };
        var (train, test) = full ? SampleData.LoadFolder(dataDir, loadOptions) : SampleData.LoadSample(loadOptions);
        Console.WriteLine($"Fashion-MNIST {(full ? $"from {dataDir}" : "sample (embedded)")}: {train.Count:N0} training images, {test.Count:N0} test images, 28×28 grayscale.");

        var mlContext = new MLContext(seed);
        var options = new PretrainOptions
        {
            Method = method, Mining = mining, Minutes = minutes, BatchSize = batchSize, Seed = seed, Threads = threads,
            CheckpointPath = outDir is null ? null : Path.Combine(outDir, PretrainCommand.CheckpointFile),
        };
        var rows = new List<(string Name, double Probe, double Knn)>();
        var diagnostics = new List<(string Name, CollapseSignals Signals, IReadOnlyList<ClusteringScore> Clusters)>();
        void Evaluate(string name, Embeddings trainFeatures, Embeddings testFeatures)
        {
            Console.WriteLine($"Evaluating {name}…");
            rows.Add((name, LinearEvaluation.Evaluate(mlContext, trainFeatures, testFeatures).Accuracy, KnnClassifier.Accuracy(trainFeatures, testFeatures)));
            diagnostics.Add((name, RepresentationMetrics.Measure(testFeatures), ClusteringDiagnostics.Evaluate(mlContext, testFeatures)));
        }

        Evaluate($"Raw pixels ({train.ImageSize}-d)", Embeddings.FromPixels(train), Embeddings.FromPixels(test));
        Runtime.TorchRuntime.SetThreads(threads);
        manual_seed(seed);
        var random = new ResNetEncoder(EncoderOptions.For(1, 28));
        Evaluate($"Random-init encoder ({random.EmbeddingDimension}-d)", Embeddings.FromEncoder(random, train), Embeddings.FromEncoder(random, test));

        var result = ConsoleProgress.Run($"Pretraining {method} for {minutes:0.#} min on {train.Count:N0} unlabeled images",
            progress => new Pretrainer(options, mlContext).Fit(train, progress));
        Evaluate($"{method} encoder ({result.Encoder.EmbeddingDimension}-d)", Embeddings.FromEncoder(result.Encoder, train), Embeddings.FromEncoder(result.Encoder, test));

        var table = new Table().AddColumn("Features").AddColumn(new TableColumn("Linear probe").RightAligned())
            .AddColumn(new TableColumn("kNN (k=200, T=0.1)").RightAligned());
        foreach (var (name, probe, knn) in rows) table.AddRow(Markup.Escape(name), $"{probe:P1}", $"{knn:P1}");
        table.Caption($"Test split: {test.Count:N0} images; probe = ML.NET LbfgsMaximumEntropy on {train.Count:N0} labelled training embeddings");
        AnsiConsole.Write(table);

        var clustering = new Table().AddColumn("Features").AddColumn(new TableColumn("Std·√D").RightAligned())
            .AddColumn(new TableColumn("Rank").RightAligned());
        foreach (var k in diagnostics[0].Clusters.Select(c => c.Clusters))
            clustering.AddColumn(new TableColumn($"K={k}").RightAligned());
        foreach (var (name, signals, clusters) in diagnostics)
            clustering.AddRow(new[] { Markup.Escape(name.Split(" (")[0]), $"{signals.StdOfNormalized / signals.ExpectedStd:F2}", $"{signals.EffectiveRank:F0}" }
                .Concat(clusters.Select(c => $"{c.Nmi:F2}/{c.Ari:F2}/{c.Purity:F2}")).ToArray());
        clustering.Caption("Test split. Std·√D: spread of normalised embeddings (1 = uniform, 0 = collapsed); Rank: effective rank; " +
                           "K=…: NMI/ARI/purity of ML.NET k-means at K/2, K, 2K clusters (merged classes: under-clustering; split: over-clustering)");
        AnsiConsole.Write(clustering);

        var epochs = (double)result.Info.GlobalStep * batchSize / train.Count;
        Console.WriteLine($"Pretraining: {result.Info.GlobalStep} steps ({epochs:F1} epochs) at batch {batchSize}, " +
                          $"{result.ViewsPerSecond:F0} views/s on {threads} threads, peak memory {CommandRunner.PeakMemory()}.");
        if (outDir is not null)
        {
            File.WriteAllText(Path.Combine(outDir, "history.json"), result.History.ToJson());
            File.WriteAllText(Path.Combine(outDir, "history.csv"), result.History.ToCsv());
        }
        return 0;
    }
}
