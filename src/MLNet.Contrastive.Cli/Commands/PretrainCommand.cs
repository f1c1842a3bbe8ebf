using System.CommandLine;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Distributed;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using Microsoft.ML;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>pretrain</c>: pretrain an encoder on unlabeled images and write its checkpoint and training history.</summary>
internal static class PretrainCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Image folder (root/<label>/*.png|jpg|jpeg|bmp, or flat) or IDX images file (raw or .gz).", Required = true };
        var labels = new Option<string?>("--labels") { Description = "IDX labels file for IDX images (optional; pretraining ignores labels)." };
        var method = MethodSettings.MethodOption();
        var methodSettings = MethodSettings.SettingsOption();
        var imageSize = new Option<int>("--image-size") { Description = "Images are resized to this square size.", DefaultValueFactory = _ => 28 };
        var channels = DataShape.ChannelsOption();
        var encoder = CommonOptions.Encoder();
        var run = RunOptions.Pretraining();
        var epochs = new Option<int?>("--epochs") { Description = $"Epochs to train (default {run.Epochs} unless --minutes is given)." };
        var minutes = new Option<double?>("--minutes") { Description = "Wall-clock budget in minutes instead of epochs." };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per step.", DefaultValueFactory = _ => run.BatchSize };
        var learningRate = new Option<double?>("--lr") { Description = "Peak learning rate (default 2e-3 for AdamW; for SGD and LARS see --lr-scaling; a tenth of it with --init, which also shortens the warm-up to 1 % of training)." };
        var scaling = new Option<LearningRateScaling>("--lr-scaling") { Description = "Default SGD/LARS learning rate: Linear (0.3·B/256) or Sqrt (0.075·√B, SimCLR's for large batches).", DefaultValueFactory = _ => LearningRateScaling.Linear };
        var chunkSize = new Option<int?>("--chunk-size") { Description = "Gradient caching: images per forward pass, for a --batch-size larger than memory holds (exact gradient; simclr, moco, nce, triplet, barlow, vicreg, clip)." };
        var optimizer = new Option<OptimizerKind>("--optimizer") { Description = "AdamW, Sgd or Lars (LARS: SGD with layer-wise trust ratios).", DefaultValueFactory = _ => OptimizerKind.AdamW };
        var seed = CommonOptions.Seed("initialisation, shuffling and augmentation");
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var weightDecay = CommonOptions.WeightDecay(run);
        var weightDecayEnd = new Option<double?>("--weight-decay-end")
        {
            Description = "The weight decay at the end of training, reached from --weight-decay along a half cosine (DINO's and iBOT's recipe: --weight-decay 0.04 --weight-decay-end 0.4). Default: constant.",
        };
        var output = new Option<string>("--out") { Description = "Output folder: model.zip, encoder.onnx, checkpoint.bin, history.json, history.csv.", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue from <out>/checkpoint.bin." };
        var init = CommonOptions.Init();
        var normalization = CommonOptions.Normalization();
        var reestimate = new Option<bool?>("--reestimate-bn")
        {
            Description = "With --init: re-estimate the batch-norm statistics on these images (unaugmented) before training; default true when the run trains, false with --epochs 0 (the imported weights and statistics unchanged).",
        };
        var teacher = new Option<string?>("--teacher")
        {
            Description = "distill: the frozen teacher — imagenet-resnet18 (ML.NET's ImageNet ResNet-18), a pretraining run's folder or checkpoint, or a PyTorch state dict " +
                          "(.pt, .pth, .safetensors), or an ONNX image encoder; the same as --method-option teacher=….",
        };
        var teacherCache = new Option<string?>("--teacher-cache")
        {
            Description = "distill: a folder for the teacher's features of K fixed views per image (--method-option cached-views=K, default 4), reused by later epochs and runs; " +
                          "a cache written for another teacher, size, seed, recipe or data is refused. The same as --method-option teacher-cache=….",
        };
        var skipBad = new Option<bool>("--skip-bad-images") { Description = "Skip unreadable images (counted) instead of failing." };
        var monitorEvery = new Option<int>("--monitor-every") { Description = "Run the kNN and collapse monitors every N epochs (kNN needs labels).", DefaultValueFactory = _ => 0 };
        var captions = new Option<string?>("--captions") { Description = "clip: a text file with one caption per image, in the images' order (`captions` makes one from labels)." };
        var cache = new Option<string?>("--cache") { Description = "Folder for a decoded-image cache: decode once, then read batches from it on later runs (any method), for datasets larger than memory." };
        var pairedData = new Option<string?>("--paired-data") { Description = "clip: a second image of each image (folder or IDX, same order), e.g. another camera; read at --image-size and --channels." };
        var distributed = new Option<bool>("--distributed")
        {
            Description = "Data-parallel training over the ranks of `mpiexec -n N mlnet-contrastive pretrain … --distributed` (MPICH): --batch-size is the " +
                          "global batch, each rank trains on B/N of it, gradients are averaged every step, rank 0 alone writes the output folder.",
        };
        var ranks = new Option<int?>("--ranks")
        {
            Description = "Launch N ranks of this command with MPICH's mpiexec (as `mpiexec -n N … --distributed` does) and wait for them; with --restarts, relaunch a failed job.",
        };
        var restarts = new Option<int>("--restarts")
        {
            Description = "With --ranks: when a rank dies (mpiexec then ends them all), relaunch the job from the last checkpoint (--resume), up to this many times.",
            DefaultValueFactory = _ => 0,
        };
        var vitPooling = new Option<VitPooling?>("--vit-pooling")
        {
            Description = "With --encoder VitTiny or VitSmall: the embedding is the ClassToken (default) or the MeanPatchTokens after the last norm (I-JEPA's and MAE's readout).",
        };
        var stallTimeout = new Option<double>("--stall-timeout")
        {
            Description = "With --distributed: seconds a rank waits for the others in one exchange before it reports a stalled rank and ends the job (0: wait for ever).",
            DefaultValueFactory = _ => 600,
        };
        var noSyncBatchNorm = new Option<bool>("--no-sync-batchnorm")
        {
            Description = "With --distributed: each rank's batch norms normalise its own slice of the batch (one exchange less per layer) instead of the whole global batch.",
        };
        var maxPixels = new Option<long>("--max-pixels") { Description = "Reject images whose header declares more pixels than this.", DefaultValueFactory = _ => 50_000_000 };

        var command = new Command("pretrain", "Pretrain an image encoder with a self-supervised method.")
        {
            data, labels, method, methodSettings, imageSize, channels, encoder, epochs, minutes, batchSize, chunkSize, learningRate, scaling, optimizer,
            weightDecay, weightDecayEnd, seed, threads, device, output, resume, init, normalization, reestimate, teacher, teacherCache, skipBad, maxPixels, monitorEvery, captions, pairedData, cache, distributed, noSyncBatchNorm, stallTimeout, ranks, restarts, vitPooling,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            if (parse.GetValue(epochs) is not null && parse.GetValue(minutes) is not null)
                throw new ArgumentException("Give either --epochs or --minutes, not both.");
            if (parse.GetValue(stallTimeout) is var stall && !(stall >= 0 && double.IsFinite(stall)))
                throw new ArgumentException($"--stall-timeout must be 0 (wait for ever) or a positive number of seconds, not {stall}.");
            if (parse.GetValue(ranks) is { } launch) return Launch(launch, parse.GetValue(restarts));
            if (parse.GetValue(vitPooling) is not null && parse.GetValue(encoder) is not (EncoderPreset.VitTiny or EncoderPreset.VitSmall))
                throw new ArgumentException("--vit-pooling goes with a Vision Transformer: --encoder VitTiny or VitSmall.");
            if (parse.GetResult(restarts) is { Implicit: false })
                throw new ArgumentException("--restarts goes with --ranks N (this command then launches and relaunches the ranks).");
            // Finalized on success only: a rank that fails exits without MPI_Finalize, and mpiexec then ends the whole job
            // (finalizing would wait for ranks that are waiting for it).
            var parallel = parse.GetValue(distributed) ? MpiDataParallel.Start() : null;
            if (parallel is not null)
                parallel.World.StallTimeout = parse.GetValue(stallTimeout) is var seconds && seconds > 0 ? TimeSpan.FromSeconds(seconds) : null;
            // The ranks hold the same weights: rank 0 alone prints and writes the run folder.
            var writer = parallel is null || parallel.Rank == 0;
            if (!writer) Console.SetOut(TextWriter.Null);
            var outDir = CommandRunner.OutputFolder(parse.GetValue(output)!);
            var loadOptions = new ImageLoadOptions
            {
                Height = parse.GetValue(imageSize), Width = parse.GetValue(imageSize),
                Channels = DataShape.Channels(parse.GetValue(channels), parse.GetValue(data)!, parse.GetValue(imageSize)),
                SkipBadImages = parse.GetValue(skipBad), MaxPixels = parse.GetValue(maxPixels), CacheFolder = parse.GetValue(cache),
            };
            List<string> settings = [.. parse.GetValue(methodSettings)!];
            foreach (var (option, setting) in new[] { (teacher, "teacher"), (teacherCache, "teacher-cache") })
            {
                if (parse.GetValue(option) is not { } value) continue;
                if (!string.Equals(parse.GetValue(method), "distill", StringComparison.OrdinalIgnoreCase))
                    throw new ArgumentException($"{option.Name} goes with --method distill, not {parse.GetValue(method)}.");
                settings.Add($"{setting}={value}");
            }
            var options = new PretrainOptions
            {
                Method = MethodSettings.Create(parse.GetValue(method)!, settings),
                Run =
                {
                    Epochs = parse.GetValue(epochs) ?? run.Epochs, Minutes = parse.GetValue(minutes), BatchSize = parse.GetValue(batchSize),
                    LearningRate = parse.GetValue(learningRate), WeightDecay = parse.GetValue(weightDecay), Seed = parse.GetValue(seed),
                    Threads = parse.GetValue(threads), Device = parse.GetValue(device)!,
                },
                WeightDecayEnd = parse.GetValue(weightDecayEnd),
                ChunkSize = parse.GetValue(chunkSize),
                LearningRateScaling = parse.GetValue(scaling), Optimizer = parse.GetValue(optimizer), CheckpointPath = new RunFolder(outDir).Checkpoint, Resume = parse.GetValue(resume),
                MonitorEvery = parse.GetValue(monitorEvery), OnMonitor = PrintMonitor,
                Initialization = CommonOptions.LoadInit(parse.GetValue(init), parse.GetValue(normalization)),
                ReestimateBatchNorm = parse.GetValue(reestimate),
                Encoder = parse.GetValue(encoder) is { } preset ? WithPooling(EncoderOptions.For(loadOptions.Channels, loadOptions.Height, preset), parse.GetValue(vitPooling)) : null,
                DataParallel = parallel, SynchronizeBatchNorm = !parse.GetValue(noSyncBatchNorm),
            };

            var loading = System.Diagnostics.Stopwatch.StartNew();
            var store = ImageStore.Load(parse.GetValue(data)!, parse.GetValue(labels), loadOptions);
            var how = store.CacheFile is null ? "decoded" : store.ReadFromCache ? $"read from the cache {store.CacheFile}, nothing decoded" : $"decoded, cache written to {store.CacheFile}";
            Console.WriteLine($"Read {store.Count:N0} images ({store.Channels}×{store.Height}×{store.Width}) from {parse.GetValue(data)} in {loading.Elapsed.TotalSeconds:F1} s ({how}).");
            foreach (var skipped in store.Skipped) Console.WriteLine($"  skipped {skipped}");
            if (store.Skipped.Count > 0) Console.WriteLine($"Skipped {store.Skipped.Count} unreadable images.");
            store = WithPairs(store, options.Method, parse.GetValue(captions), parse.GetValue(pairedData), loadOptions);

            if (options.Resume && File.Exists(options.CheckpointPath))
            {
                var checkpoint = PretrainedEncoder.Load(options.CheckpointPath);
                var (before, now) = (checkpoint.Processes ?? 1, parallel?.WorldSize ?? 1);
                // Batches are sliced from the global order, so another number of ranks continues the same run.
                Console.WriteLine($"Resuming from {options.CheckpointPath}: {checkpoint.Steps} steps done" + (before == now ? "." :
                    $" by {before} process{(before == 1 ? "" : "es")}; continuing on {now}, {options.Run.BatchSize / now} images of each global batch of {options.Run.BatchSize} per process."));
            }
            if (parallel is not null)
                Console.WriteLine($"Data-parallel over {parallel.WorldSize} MPI ranks: {options.Run.BatchSize / parallel.WorldSize} images per rank per step.\n" +
                    (options.SynchronizeBatchNorm ? "Batch norm normalises over the global batch (synchronised over the ranks)." : "Batch norm normalises each rank's slice (--no-sync-batchnorm)."));
            var result = ConsoleProgress.Run($"Pretraining {options.Method.Name}", progress => new Pretrainer(options).Fit(store, progress, CommandRunner.Interrupted));
            if (!writer)
            {
                parallel!.Dispose();
                return 0;
            }
            result.History.Save(outDir);
            WriteEmbeddingModel(result, store, outDir);
            if (result.Method is Clip clip) WriteTowers(clip, store, outDir);
            var report = new RunReport
            {
                Title = $"{options.Method.Name} pretraining on {parse.GetValue(data)}",
                Facts =
                [
                    $"Data: {store.Count:N0} images ({store.Channels}×{store.Height}×{store.Width}) from {parse.GetValue(data)}.",
                    $"Encoder: {result.Encoder.Options.Describe()}; {result.Encoder.parameters().Sum(p => p.numel()):N0} parameters; " +
                    $"weights from {(result.InitializedFrom is { } from ? from : "a random initialisation")}.",
                    .. result.Options.Method is DistillationOptions distill
                        ? [$"Teacher: {distill.Teacher} at {distill.TeacherImageSize} px ({distill.TeacherDimension}-d, {distill.Target} target, {distill.Loss} loss{(distill.Mixup ? ", mixup" : "")})."]
                        : Array.Empty<string>(),
                    $"Method {options.Method.Name}, batch {options.Run.BatchSize}, {result.Steps} steps ({result.Epochs} full epochs), " +
                    $"{result.ViewsPerSecond:F0} views/s on {options.Run.Threads} threads{(parallel is null ? "" : $" × {parallel.WorldSize} ranks")}, peak memory {CommandRunner.PeakMemory()}.",
                ],
                History = result.History,
            };
            var shown = store.Subset(Enumerable.Range(0, Math.Min(2000, store.Count)).ToArray());
            var shownEmbeddings = Embeddings.FromEncoder(result.Encoder, shown);
            EmbeddingViews.Describe(report, shown, shownEmbeddings, "training images");
            // The monitors run only with --monitor-every; a collapsed encoder is worth a warning in any run.
            if (RepresentationMetrics.Measure(shownEmbeddings) is { Collapsed: true } signals)
                Console.WriteLine($"WARNING: the encoder has collapsed (std of normalised embeddings {signals.StdOfNormalized:G3} vs 1/√D " +
                                  $"{signals.ExpectedStd:G3}, effective rank {signals.EffectiveRank:F1}, on {shown.Count:N0} training images); " +
                                  "its embeddings carry little information: lower the learning rate or change the method's settings.");
            var html = ReportCommand.Save(report, outDir);
            var last = result.History.Epochs.LastOrDefault();
            Console.WriteLine(result.Steps == 0
                ? $"Done: no training (0 epochs); the run holds the weights of {options.Initialization?.Source} unchanged, peak memory {CommandRunner.PeakMemory()}."
                : $"Done: {result.Steps} steps, {result.Epochs} full epochs, last epoch's mean loss {last?.MeanLoss:F4}, " +
                  $"{result.ViewsPerSecond:F0} views/s, peak memory {CommandRunner.PeakMemory()}.");
            Console.WriteLine($"Wrote {RunFolder.ModelFile} (ML.NET embedding stage, input column '{RunFolder.ImagePathColumn}'), " +
                              $"{RunFolder.EncoderFile}, {RunFolder.CheckpointFile}, {RunFolder.HistoryFile}, {RunFolder.HistoryCsvFile} and {RunFolder.ReportFile} to {outDir}; report: {html}.");
            parallel?.Dispose();
            return 0;
        }, "To continue, run the same command with --resume."));
        return command;
    }

    /// <summary>The store paired with the captions of <paramref name="captionsFile"/> (one per line) or the images of <paramref name="pairedData"/>.</summary>
    private static EncoderOptions WithPooling(EncoderOptions encoder, VitPooling? pooling)
    {
        if (pooling is { } chosen) encoder.VitPooling = chosen;
        return encoder;
    }

    /// <summary>
    /// `--ranks N`: runs this same command on N ranks under mpiexec (with --distributed, without --ranks and --restarts),
    /// relaunching it from its checkpoint up to <paramref name="restarts"/> times when the job fails.
    /// </summary>
    private static int Launch(int ranks, int restarts)
    {
        if (Environment.GetEnvironmentVariable("PMI_RANK") is not null)
            throw new ArgumentException("--ranks launches the ranks itself; a process already started by mpiexec takes --distributed instead.");
        var arguments = Environment.GetCommandLineArgs()[1..].ToList();
        foreach (var option in new[] { "--ranks", "--restarts" })
            // "--ranks 2", or "--ranks=2" and "--ranks:2" in one token.
            for (int i; (i = arguments.FindIndex(a => a == option || a.StartsWith(option + "=", StringComparison.Ordinal) || a.StartsWith(option + ":", StringComparison.Ordinal))) >= 0;)
                arguments.RemoveRange(i, arguments[i] == option ? Math.Min(2, arguments.Count - i) : 1);
        if (!arguments.Contains("--distributed")) arguments.Add("--distributed");
        // `dotnet mlnet-contrastive.dll …` runs the host with the assembly; the installed tool is an executable of its own.
        var host = Environment.ProcessPath!;
        List<string> command = Path.GetFileNameWithoutExtension(host) == "dotnet" ? [host, typeof(PretrainCommand).Assembly.Location] : [host];
        return MpiLauncher.Run(ranks, restarts, [.. command, .. arguments], Console.Out);
    }

    private static ImageStore WithPairs(ImageStore store, MethodOptions method, string? captionsFile, string? pairedData, ImageLoadOptions load)
    {
        if (captionsFile is not null && pairedData is not null) throw new ArgumentException("Give either --captions or --paired-data, not both.");
        if (captionsFile is null && pairedData is null) return store;
        if (method is not ClipOptions clip) throw new ArgumentException($"--captions and --paired-data are for --method clip, not {method.Name}.");
        if (captionsFile is not null)
        {
            if (!File.Exists(captionsFile)) throw new FileNotFoundException($"--captions {captionsFile}: no such file.", captionsFile);
            var lines = File.ReadAllLines(captionsFile);
            if (lines.Length != store.Count)
                throw new ArgumentException($"--captions {captionsFile}: {lines.Length:N0} lines for {store.Count:N0} images; give one caption per image, in the images' order.");
            Console.WriteLine($"Read {lines.Length:N0} captions from {captionsFile}.");
            return store.WithPairs(TextPairs.Create(lines, clip.TextBits));
        }
        var second = ImageStore.Load(pairedData!, null, load);
        if (second.Count != store.Count)
            throw new ArgumentException($"--paired-data {pairedData}: {second.Count:N0} images for {store.Count:N0}; give one second image per image, in the same order.");
        Console.WriteLine($"Read {second.Count:N0} paired images from {pairedData}.");
        return store.WithPairs(new ImagePairs(second));
    }

    /// <summary>The CLIP run's towers as ONNX beside the embedding model: image_tower.onnx and text_tower.onnx (captions) or paired_image_tower.onnx (second images).</summary>
    private static void WriteTowers(Clip clip, ImageStore store, string outDir)
    {
        ClipOnnxExporter.ExportImageTower(clip, new RunFolder(outDir)[RunFolder.ImageTowerFile],
            new EncoderOnnxOptions { OutputName = "ImageEmbedding", Height = store.Height, Width = store.Width });
        var options = (ClipOptions)clip.Options;
        var second = clip.TextTower is not null ? RunFolder.TextTowerFile : RunFolder.PairedImageTowerFile;
        if (clip.TextTower is not null) ClipOnnxExporter.ExportTextTower(clip, new RunFolder(outDir)[second]);
        else ClipOnnxExporter.ExportPairedImageTower(clip, new RunFolder(outDir)[second],
            new EncoderOnnxOptions { OutputName = "ImageEmbedding", Height = options.PairedHeight, Width = options.PairedWidth });
        Console.WriteLine($"Wrote {RunFolder.ImageTowerFile} and {second} (joint space, unit length; learned logit scale {clip.LogitScale:F1}).");
    }

    internal static void PrintMonitor(MonitorRecord m)
    {
        Console.WriteLine($"  monitors after epoch {m.Epoch}: {m.Describe()}");
        if (m.Collapsed) Console.WriteLine($"  WARNING: {m.CollapseWarning()}");
    }

    /// <summary>model.zip: the ML.NET embedding stage that scores image paths; encoder.onnx: the encoder it applies.</summary>
    internal static void WriteEmbeddingModel(PretrainResult result, ImageStore store, string outDir)
    {
        var mlContext = new MLContext();
        var paths = SavedModel.PathView(mlContext, [], RunFolder.ImagePathColumn);
        using var stage = ImageEmbeddingEstimator.CreateStage(mlContext, paths, result, new ImageEmbeddingEstimator.Options
        {
            InputColumnName = RunFolder.ImagePathColumn, ImageHeight = store.Height, ImageWidth = store.Width, Channels = store.Channels,
            OnnxPath = new RunFolder(outDir).Encoder,
        });
        mlContext.Model.Save(stage, paths.Schema, new RunFolder(outDir).Model);
    }
}
