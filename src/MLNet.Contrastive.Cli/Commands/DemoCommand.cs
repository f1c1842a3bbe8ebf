using System.CommandLine;
using Microsoft.ML;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Selection;
using MLNet.Contrastive.Stages;
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
        var batchSize = new Option<int>("--batch-size") { Description = "Images per step.", DefaultValueFactory = _ => RunOptions.Pretraining().BatchSize };
        var seed = CommonOptions.Seed("the label samples, initialisation, shuffling and augmentation");
        var threads = CommonOptions.Threads();
        var output = new Option<string>("--out") { Description = "Folder for the checkpoint, training history and report.", DefaultValueFactory = _ => "demo-run" };
        var baselineMinutes = new Option<double?>("--baseline-minutes")
        {
            Description = "Budget of fine-tuning the pretrained encoder, and of training it from scratch, at each label fraction (1 %, 10 %, 100 %); 0 skips both. Default: a quarter of --minutes.",
        };
        var distillMinutes = new Option<double>("--distill-minutes")
        {
            Description = "Also distil each fine-tuned network, and each trained from scratch, into a student over all training images, the unlabelled ones included (SimCLRv2's third step), for this many minutes at each fraction; 0 skips it.",
            DefaultValueFactory = _ => 0,
        };
        var fixMatchMinutes = new Option<double>("--fixmatch-minutes")
        {
            Description = "Also fine-tune the pretrained encoder, and train it from scratch, with FixMatch (the training images outside each fraction train too, unlabelled) for this many minutes at each fraction; 0 skips it.",
            DefaultValueFactory = _ => 0,
        };
        var labelFractions = new Option<double[]>("--label-fractions")
        {
            Description = "The fractions of the training labels the table's columns use (stratified, seeded; at least one image a class), each in (0, 1], e.g. --label-fractions 0.001 0.01 0.1 1.",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => [.. LabelEfficiency.StandardFractions],
        };
        var labelSamples = new Option<int?>("--label-samples")
        {
            Description = "Below 100 %, average every row over this many label samples (seeds --seed, --seed + 1, …; the same rows for every row of the table). " +
                          "Default: 3 on the sample, where one sample of 60 or 599 labelled images and 1,000 test images is noisy enough to reorder the rows; 1 with --full.",
        };
        var selectBudgets = new Option<int[]>("--select-budgets")
        {
            Description = "Also probe the pretrained encoder with this many labels chosen from its embeddings by each --select-strategies strategy, e.g. --select-budgets 10 20 50 (docs/selection.md). Default: none.",
            AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [],
        };
        var selectStrategies = new Option<string[]>("--select-strategies")
        {
            Description = "The strategies --select-budgets compares: random, kmeans, typiclust, probcover, kcenter.",
            AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => ["random", new LabelSelectionOptions().Strategy.ToString().ToLowerInvariant()],
        };
        var imageSize = new Option<int>("--image-size") { Description = "Images are resized to this square size.", DefaultValueFactory = _ => 28 };
        var channels = new Option<int>("--channels") { Description = "1 (grayscale) or 3 (RGB; e.g. the set build/make-rgb-set.py makes).", DefaultValueFactory = _ => 1 };
        var encoder = CommonOptions.Encoder();
        var method = MethodSettings.MethodOption();
        var methodSettings = MethodSettings.SettingsOption();
        var init = CommonOptions.Init();
        var normalization = CommonOptions.Normalization();

        var command = new Command("demo", "Pretrain SimCLR on Fashion-MNIST and compare it with raw pixels and a random encoder.")
        {
            minutes, full, dataDir, imageSize, channels, encoder, batchSize, seed, threads, output, method, methodSettings, baselineMinutes,
            distillMinutes, fixMatchMinutes, labelFractions, labelSamples, selectBudgets, selectStrategies, init, normalization,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var loadOptions = new ImageLoadOptions { Height = parse.GetValue(imageSize), Width = parse.GetValue(imageSize), Channels = parse.GetValue(channels) };
            var initialization = CommonOptions.LoadInit(parse.GetValue(init), parse.GetValue(normalization));
            if (initialization is not null && parse.GetValue(encoder) is not null)
                throw new ArgumentException("--encoder sets the shape of an encoder from random weights; with --init the imported encoder's shape is used.");
            return Run(MethodSettings.Create(parse.GetValue(method)!, parse.GetValue(methodSettings)!), parse.GetValue(minutes), parse.GetValue(full),
                parse.GetValue(dataDir)!, loadOptions, initialization?.EncoderOptions.Clone() ?? EncoderOptions.For(loadOptions.Channels, loadOptions.Height, parse.GetValue(encoder) ?? EncoderPreset.Small),
                parse.GetValue(batchSize), parse.GetValue(seed), parse.GetValue(threads), parse.GetValue(output)!, parse.GetValue(baselineMinutes) ?? parse.GetValue(minutes) / 4, parse.GetValue(distillMinutes),
                parse.GetValue(fixMatchMinutes), parse.GetValue(labelFractions)!, parse.GetValue(labelSamples) ?? (parse.GetValue(full) ? 1 : 3),
                parse.GetValue(selectBudgets)!, parse.GetValue(selectStrategies)!.Select(name => LabelSelection.ParseStrategy(name, "--select-strategies")).ToArray(), initialization);
        }));
        return command;
    }

    private static int Run(Methods.MethodOptions methodOptions, double minutes, bool full, string dataDir, ImageLoadOptions loadOptions,
        EncoderOptions encoder, int batchSize, int seed, int threads, string outDir, double baselineMinutes, double distillMinutes,
        double fixMatchMinutes, double[] labelFractions, int labelSamples, int[]? selectBudgets = null, SelectionStrategy[]? strategies = null,
        PretrainedEncoder? initialization = null)
    {
        if (selectBudgets?.Any(b => b <= 0) == true) throw new ArgumentOutOfRangeException(nameof(selectBudgets), string.Join(" ", selectBudgets), "--select-budgets must be positive.");
        if (labelFractions.Length == 0 || labelFractions.Any(f => !(f is > 0 and <= 1)))
            throw new ArgumentOutOfRangeException(nameof(labelFractions), string.Join(" ", labelFractions), "--label-fractions must be one or more fractions in (0, 1].");
        if (labelSamples < 1) throw new ArgumentOutOfRangeException(nameof(labelSamples), labelSamples, "--label-samples must be at least 1.");
        if (baselineMinutes < 0) throw new ArgumentOutOfRangeException(nameof(baselineMinutes), baselineMinutes, "--baseline-minutes must be 0 or more.");
        if (!(distillMinutes >= 0)) throw new ArgumentOutOfRangeException(nameof(distillMinutes), distillMinutes, "--distill-minutes must be 0 or more.");
        if (!(fixMatchMinutes >= 0 && double.IsFinite(fixMatchMinutes)))
            throw new ArgumentOutOfRangeException(nameof(fixMatchMinutes), fixMatchMinutes, "--fixmatch-minutes must be 0 or more.");
        if (baselineMinutes == 0 && distillMinutes + fixMatchMinutes > 0)
            throw new ArgumentException("--distill-minutes and --fixmatch-minutes add rows to the fine-tuning comparison, which --baseline-minutes 0 skips.");
        var (train, test) = full ? SampleData.LoadFolder(dataDir, loadOptions) : SampleData.LoadSample(loadOptions);
        var dataset = $"Fashion-MNIST {(full ? $"from {dataDir}" : "sample (embedded)")}: {train.Count:N0} training images, {test.Count:N0} test images, " +
                      $"{loadOptions.Width}×{loadOptions.Height} {(loadOptions.Channels == 1 ? "grayscale" : "RGB")}.";
        Console.WriteLine(dataset);

        var method = methodOptions.Name;
        var mlContext = new MLContext(seed);
        CommandRunner.OutputFolder(outDir);
        var options = new PretrainOptions
        {
            Method = methodOptions, Encoder = initialization is null ? encoder : null, Initialization = initialization, Run = { Minutes = minutes, BatchSize = batchSize, Seed = seed, Threads = threads },
            CheckpointPath = new RunFolder(outDir).Checkpoint,
            MonitorEvery = 1, MonitorData = test, OnMonitor = PretrainCommand.PrintMonitor,
        };
        var fractions = labelFractions.Distinct().Order().ToList();
        var report = new RunReport { Title = $"Demo: {method} on Fashion-MNIST{(full ? "" : " (embedded sample)")}" };
        void Evaluate(string name, Embeddings trainFeatures, Embeddings testFeatures)
        {
            Console.WriteLine($"Evaluating {name}…");
            var (summary, curve) = FeatureEvaluation.Evaluate(mlContext, name, trainFeatures, testFeatures, fractions, seed, labelSamples);
            report.LabelEfficiency.AddRange(curve);
            report.Features.Add(summary);
        }

        Evaluate($"Raw pixels ({train.ImageSize}-d)", Embeddings.FromPixels(train), Embeddings.FromPixels(test));
        Runtime.TorchRuntime.SetThreads(threads);
        manual_seed(seed);
        var random = ImageEncoder.Create(encoder.Clone());
        Evaluate($"Random-init encoder ({random.EmbeddingDimension}-d)", Embeddings.FromEncoder(random, train), Embeddings.FromEncoder(random, test));
        // Hierarchical pretraining: the imported weights' own row, before the method continues from them.
        if (initialization is not null)
            Evaluate($"Imported {initialization.Source} ({initialization.Encoder.EmbeddingDimension}-d)",
                Embeddings.FromEncoder(initialization.Encoder, train), Embeddings.FromEncoder(initialization.Encoder, test));

        var result = ConsoleProgress.Run($"Pretraining {method} for {minutes:0.#} min on {train.Count:N0} unlabeled images",
            progress => new Pretrainer(options, mlContext).Fit(train, progress, CommandRunner.Interrupted));
        var pretrainedTest = Embeddings.FromEncoder(result.Encoder, test);
        var pretrainedTrain = Embeddings.FromEncoder(result.Encoder, train);
        Evaluate($"{method} encoder ({result.Encoder.EmbeddingDimension}-d)", pretrainedTrain, pretrainedTest);
        if (selectBudgets is { Length: > 0 }) SelectionTable(mlContext, pretrainedTrain, pretrainedTest, selectBudgets, strategies ?? [SelectionStrategy.Random, new LabelSelectionOptions().Strategy], seed, labelSamples);
        if (baselineMinutes > 0)
        {
            var fineTuning = new FineTuningTrainer.Options { Run = { Minutes = baselineMinutes, Seed = seed, Threads = threads }, Pretrained = PretrainedEncoder.From(result), Encoder = encoder.Clone() };
            void Curve(string name, string doing, FineTuningTrainer.Options settings) =>
                report.LabelEfficiency.AddRange(LabelEfficiency.FineTuned(mlContext, name, train, test, fractions, settings, seed,
                    (fraction, images) => Console.WriteLine($"{doing} on {LabelEfficiency.Percent(fraction)} of the labels ({images:N0} images) for {settings.Run.Minutes:0.##} min" +
                        (settings.Distils ? $", then distilling for {distillMinutes:0.##} min on all {train.Count:N0} images…" : "…")), labelSamples));
            var fromScratch = fineTuning.Clone();
            fromScratch.Pretrained = null;
            Curve($"Fine-tuned {method} encoder", $"Fine-tuning the {method} encoder", fineTuning);
            Curve("Supervised from scratch", "Training the same encoder from scratch", fromScratch);
            if (distillMinutes > 0)
            {
                fineTuning.DistillationMinutes = fromScratch.DistillationMinutes = distillMinutes;
                Curve($"Fine-tuned {method} encoder, distilled", $"Fine-tuning the {method} encoder", fineTuning);
                Curve("From scratch, distilled", "Training the same encoder from scratch", fromScratch);
                fineTuning.DistillationMinutes = fromScratch.DistillationMinutes = null;
            }
            if (fixMatchMinutes > 0)
            {
                fineTuning.FixMatch = fromScratch.FixMatch = true;
                fineTuning.Run.Minutes = fromScratch.Run.Minutes = fixMatchMinutes;
                Curve($"Fine-tuned {method} encoder, FixMatch", $"FixMatch from the {method} encoder", fineTuning);
                Curve("From scratch, FixMatch", "FixMatch from scratch", fromScratch);
            }
        }

        var table = new Table().AddColumn("Features");
        foreach (var fraction in fractions) table.AddColumn(new TableColumn($"Probe, {LabelEfficiency.Percent(fraction)} labels").RightAligned());
        table.AddColumn(new TableColumn("kNN (k=200, T=0.1)").RightAligned());
        foreach (var group in report.LabelEfficiency.GroupBy(p => p.Features))
        {
            var knn = report.Features.FirstOrDefault(f => f.Features == group.Key)?.KnnAccuracy;
            table.AddRow(group.Select(p => $"{p.Accuracy:P1}").Prepend(Markup.Escape(group.Key)).Append(knn is { } k ? $"{k:P1}" : "—").ToArray());
        }
        table.Caption($"Test split: {test.Count:N0} images; probe = ML.NET LbfgsMaximumEntropy on a stratified fraction of {train.Count:N0} labelled " +
                      $"training embeddings" + (baselineMinutes > 0 ? $"; fine-tuned and from scratch: the encoder and a classifier trained on those labelled images, {baselineMinutes:0.##} min each" : "") +
                      (distillMinutes > 0 ? $"; distilled: then a student trained {distillMinutes:0.##} min on the network's predictions for the other training images and those labels" : "") +
                      (fixMatchMinutes > 0 ? $"; FixMatch: {fixMatchMinutes:0.##} min on those labelled images and the other training images, unlabelled" : "") +
                      (labelSamples > 1 ? $"; below 100 %, each cell is the mean over {labelSamples} label samples (seeds {seed}–{seed + labelSamples - 1})" : ""));
        AnsiConsole.Write(table);

        var clustering = new Table().AddColumn("Features").AddColumn(new TableColumn("Std·√D").RightAligned())
            .AddColumn(new TableColumn("Rank").RightAligned());
        foreach (var k in report.Features[0].Clustering.Select(c => c.Clusters))
            clustering.AddColumn(new TableColumn($"K={k}").RightAligned());
        foreach (var f in report.Features)
            clustering.AddRow(new[] { Markup.Escape(f.Features.Split(" (")[0]), $"{f.Collapse.StdOfNormalized / f.Collapse.ExpectedStd:F2}", $"{f.Collapse.EffectiveRank:F0}" }
                .Concat(f.Clustering.Select(c => $"{c.Nmi:F2}/{c.Ari:F2}/{c.Purity:F2}")).ToArray());
        clustering.Caption("Test split. Std·√D: spread of normalised embeddings (1 = uniform, 0 = collapsed); Rank: effective rank; " +
                           "K=…: NMI/ARI/purity of ML.NET k-means at K/2, K, 2K clusters (merged classes: under-clustering; split: over-clustering)");
        AnsiConsole.Write(clustering);

        var epochs = (double)result.Steps * batchSize / train.Count;
        var summary = $"Pretraining: {result.Steps} steps ({epochs:F1} epochs) at batch {batchSize}, " +
                      $"{result.ViewsPerSecond:F0} views/s on {threads} threads, peak memory {CommandRunner.PeakMemory()}.";
        Console.WriteLine(summary);
        result.History.Save(outDir);
        report.Facts = [dataset,
            $"{method} for {minutes:0.##} min, seed {seed}.", summary];
        report.History = result.History;
        EmbeddingViews.Describe(report, test, pretrainedTest, "test images", SampleData.ClassNames);
        Console.WriteLine($"Report: {ReportCommand.Save(report, outDir)}");
        return 0;
    }

    /// <summary>The probe's test accuracy with each budget of labels chosen by each strategy (mean ± sd over <paramref name="samples"/> seeds).</summary>
    private static void SelectionTable(MLContext mlContext, Embeddings train, Embeddings test, int[] budgets, SelectionStrategy[] strategies, int seed, int samples)
    {
        var table = new Table().AddColumn("Labels chosen by");
        foreach (var budget in budgets) table.AddColumn(new TableColumn($"Probe, {budget} labels").RightAligned());
        foreach (var strategy in strategies)
        {
            Console.WriteLine($"Choosing labels with {strategy}…");
            table.AddRow(budgets.Select(budget =>
            {
                var accuracies = new List<double>();
                LabelEfficiency.ProbeSelected(mlContext, strategy.ToString(), train, test, budget, strategy, seed, samples, accuracies);
                var mean = accuracies.Average();
                var sd = accuracies.Count > 1 ? Math.Sqrt(accuracies.Sum(a => (a - mean) * (a - mean)) / (accuracies.Count - 1)) : 0;
                return $"{100 * mean:F1} ± {100 * sd:F1} %";
            }).Prepend(strategy.ToString()).ToArray());
        }
        table.Caption($"The pretrained encoder's embeddings of the {train.Count:N0} training images choose which to label (their labels unseen); " +
                      $"the probe trains on those only; {samples} selection seed(s) from {seed}, mean ± standard deviation.");
        AnsiConsole.Write(table);
    }
}
