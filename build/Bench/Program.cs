// The C# side of build/bench; each command prints a Markdown section.
//   Bench evaluate --data-dir D --checkpoint C [--pytorch PREFIX] [--fine-tune-minutes M] [--threads N] [--seed S]
//       linear probe at 1 %, 10 % and 100 % of the labels and kNN on the test split, for raw pixels, the random-init
//       encoder, the C# SimCLR checkpoint and the PyTorch reference's embeddings; the checkpoint fine-tuned and the
//       same encoder trained from scratch on those labels (M min per fraction);
//   Bench profile --data-dir D [--steps N] [--method M] [--image-size S] [--channels C] [--encoder PRESET]
//       where a training step's time goes (views, encoder forward, head and loss, backward, optimizer), in ms;
//   Bench selection | duplicates | index --data-dir D --run R …: docs/selection.md's figures (SelectionBench.cs);
//   Bench energy --data-dir D [--held-out K] [--epochs E] [--width W] [--depth B] [--normalize-targets true|false] [--run CHECKPOINT]
//       docs/methods.md's reconstruction-energy AUROCs (EnergyBench.cs): an MAE trained without class K;
//   Bench limit [--threads N]
//       the machine's attainable float32 speed in this libtorch (a 2,048-square matrix product, a 3 × 3 convolution of
//       64 × 128 × 56 × 56 to 128 channels NCHW and channels-last), GFLOP/s, as JSON; build/speed divides by it;
//   Bench scoring --run R --data-dir D [--count N] [--dnn-train N] [--dnn-test N]
//       ML.NET embedding stage (row by row) vs ImageEmbedder (batch 256) on N test PNGs, parity, and ML.NET's
//       DnnFeaturizeImage (ResNet18) against our encoder on a train/test split: throughput and probe accuracy.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var options = Enumerable.Range(0, (args.Length - 1) / 2).ToDictionary(i => args[1 + 2 * i], i => args[2 + 2 * i]);
string Arg(string name, string? fallback = null) => options.TryGetValue(name, out var v) ? v : fallback ?? throw new ArgumentException($"{name} is required.");
var threads = int.Parse(Arg("--threads", "2"));
var seed = int.Parse(Arg("--seed", "0"));
TorchRuntime.SetThreads(threads);
if (args[0] == "limit") return Limit();
var size = int.Parse(Arg("--image-size", "28"));
var load = new ImageLoadOptions { Channels = int.Parse(Arg("--channels", "1")), Height = size, Width = size };
var dataDir = Arg("--data-dir");
ImageStore Part(string kind) => ImageStore.Load(Path.Combine(dataDir, $"{kind}-images-idx3-ubyte.gz"), Path.Combine(dataDir, $"{kind}-labels-idx1-ubyte.gz"), load);
var (train, test) = (Part("train"), Part("t10k"));
var mlContext = new MLContext(seed);
return args[0] switch
{
    "evaluate" => Evaluate(),
    "scoring" => Scoring(),
    "profile" => Profile(),
    "selection" => SelectionBench.Selection(mlContext, train, test, Arg),
    "duplicates" => SelectionBench.Duplicates(train, Arg),
    "index" => SelectionBench.Index(train, Arg),
    "energy" => EnergyBench.Energy(train, test, Arg, seed, threads),
    _ => throw new ArgumentException($"Unknown command {args[0]}."),
};

int Evaluate()
{
    var fractions = LabelEfficiency.StandardFractions;
    var rows = new List<(string Name, IReadOnlyList<LabelEfficiencyPoint> Curve, double? Knn)>();
    void Add(string name, Embeddings trainFeatures, Embeddings testFeatures)
    {
        var (summary, curve) = FeatureEvaluation.Evaluate(mlContext, name, trainFeatures, testFeatures, fractions, seed);
        rows.Add((name, curve, summary.KnnAccuracy));
    }

    Add($"Raw pixels ({train.ImageSize}-d)", Embeddings.FromPixels(train), Embeddings.FromPixels(test));
    TorchSharp.torch.manual_seed(seed);
    var random = new ResNetEncoder(EncoderOptions.For(load.Channels, size));
    Add($"Random-init encoder ({random.EmbeddingDimension}-d)", Embeddings.FromEncoder(random, train), Embeddings.FromEncoder(random, test));
    var encoder = Checkpoint.LoadEncoder(Arg("--checkpoint"));
    Add($"MLNet.Contrastive SimCLR ({encoder.EmbeddingDimension}-d)", Embeddings.FromEncoder(encoder, train), Embeddings.FromEncoder(encoder, test));
    if (options.TryGetValue("--pytorch", out var prefix))
        Add($"PyTorch reference SimCLR ({encoder.EmbeddingDimension}-d)", ReadF32(prefix + ".train.f32", train), ReadF32(prefix + ".test.f32", test));
    var minutes = double.Parse(Arg("--fine-tune-minutes", "0"));
    if (minutes > 0)
    {
        var fineTuning = new FineTuningTrainer.Options { Run = { Minutes = minutes, Seed = seed, Threads = threads }, Pretrained = PretrainedEncoder.From(encoder) };
        rows.Add(("MLNet.Contrastive SimCLR, fine-tuned", LabelEfficiency.FineTuned(mlContext, "fine-tuned", train, test, fractions, fineTuning, seed), null));
        fineTuning.Pretrained = null;
        rows.Add(("Supervised from scratch (same encoder)", LabelEfficiency.FineTuned(mlContext, "scratch", train, test, fractions, fineTuning, seed), null));
    }

    var labelled = rows[0].Curve.Select(p => $"{p.LabelFraction:P0} ({p.LabeledImages:N0})");
    Console.WriteLine($"| Features | {string.Join(" | ", labelled.Select(l => $"Probe, {l} labels"))} | kNN (k = 200, T = 0.1) |");
    Console.WriteLine($"|---|{string.Concat(fractions.Select(_ => "---:|"))}---:|");
    foreach (var (name, curve, knn) in rows)
        Console.WriteLine($"| {name} | {string.Join(" | ", curve.Select(p => $"{p.Accuracy:P1}"))} | {(knn is { } k ? $"{k:P1}" : "—")} |");
    Console.WriteLine();
    Console.WriteLine($"Probe: ML.NET LbfgsMaximumEntropy on a stratified, seeded fraction of the {train.Count:N0} labelled training embeddings " +
                      $"(the same rows for every row of the table); test: {test.Count:N0} images." +
                      (minutes > 0 ? $" Fine-tuned and from scratch: the encoder (pretrained, or new) plus a classifier trained with cross-entropy on those labelled rows only, {minutes:0.##} min each (crop-and-flip views), scored by the fitted ML.NET stage (LbfgsMaximumEntropy on the network's logits)." : ""));
    return 0;
}

// Pretrainer's own training step (TrainingSession.Step) timed by phase on a fixed batch of 256: 5 warm-up steps,
// then the mean of --steps steps of views, encoder forward, head + loss, backward, optimizer + hooks, whole step.
int Profile()
{
    var steps = int.Parse(Arg("--steps", "20"));
    var run = new PretrainOptions { Method = PretrainingMethods.Defaults(Arg("--method", "simclr")), Run = { BatchSize = 256, Seed = seed, Threads = threads, Device = "cpu" }};
    if (options.TryGetValue("--encoder", out var preset)) run.Encoder = EncoderOptions.For(load.Channels, size, Enum.Parse<EncoderPreset>(preset, ignoreCase: true));
    using var session = new Pretrainer(run, mlContext).Start(train);
    var phases = new double[6];
    var indices = Enumerable.Range(0, run.Run.BatchSize).ToArray();
    for (var step = 0; step < 5 + steps; step++)
    {
        var clock = Stopwatch.StartNew();
        var marks = new List<double>();
        session.Step(indices, progress: 0.5, epoch: 1, mark: _ => marks.Add(clock.Elapsed.TotalMilliseconds));
        if (step < 5) continue;
        for (var i = 0; i < 5; i++) phases[i] += marks[i] - (i == 0 ? 0 : marks[i - 1]);
        phases[5] += clock.Elapsed.TotalMilliseconds;
    }
    Console.WriteLine(string.Join(" ", phases.Select(p => (p / steps).ToString("F1", CultureInfo.InvariantCulture))));
    return 0;
}

// The same measures as build/simclr_reference.py --peak, in TorchSharp's libtorch: best of the repeats after two warm-ups.
int Limit()
{
    using var noGrad = TorchSharp.torch.no_grad();
    double Best(Func<TorchSharp.torch.Tensor> run, double flop, int repeats)
    {
        var best = double.MaxValue;
        for (var i = 0; i < repeats + 2; i++)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var clock = Stopwatch.StartNew();
            run();
            if (i >= 2) best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return Math.Round(flop / best / 1e9, 1);
    }
    const int n = 2048;
    using var a = TorchSharp.torch.randn(n, n);
    using var b = TorchSharp.torch.randn(n, n);
    var gemm = Best(() => a.mm(b), 2.0 * n * n * n, 10);
    using var x = TorchSharp.torch.randn(64, 128, 56, 56);
    using var w = TorchSharp.torch.randn(128, 128, 3, 3);
    var flop = 2.0 * w.numel() * 56 * 56 * 64;
    var nchw = Best(() => TorchSharp.torch.nn.functional.conv2d(x, w, padding: [1, 1]), flop, 5);
    // Channels-last strides as ResNetEncoder makes them (TorchSharp 0.107 has no memory-format argument).
    using var xLast = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
    using var wLast = w.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
    var nhwc = Best(() => TorchSharp.torch.nn.functional.conv2d(xLast, wLast, padding: [1, 1]), flop, 5);
    Console.WriteLine($"{{\"torch\": \"libtorch (TorchSharp)\", \"threads\": {threads}, \"onednn_convolutions\": {(!TorchRuntime.OneDnnConvolutionsOff).ToString().ToLowerInvariant()}, " +
                      $"\"gemm_gflops\": {gemm}, \"conv_nchw_gflops\": {nchw}, \"conv_channels_last_gflops\": {nhwc}}}");
    return 0;
}

Embeddings ReadF32(string path, ImageStore images)
{
    var bytes = File.ReadAllBytes(path);
    var values = new float[bytes.Length / 4];
    Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
    if (values.Length % images.Count != 0) throw new InvalidDataException($"{path}: {values.Length} floats is not a multiple of {images.Count} rows.");
    return new Embeddings(values, images.Count, values.Length / images.Count, images.Labels);
}

int Scoring()
{
    var run = Arg("--run");
    var count = Math.Min(int.Parse(Arg("--count", "10000")), test.Count);
    var folder = Directory.CreateTempSubdirectory("mlnc-bench-").FullName;
    try
    {
        var testPaths = WritePngs(test, count, Path.Combine(folder, "test"));
        var model = SavedModel.Load(mlContext, new RunFolder(run).Model, out var schema);
        var column = SavedModel.PathColumn(run, schema, model, "Embedding");
        var view = SavedModel.PathView(mlContext, testPaths, column);
        model.Transform(SavedModel.PathView(mlContext, testPaths.Take(10), column)).GetColumn<VBuffer<float>>("Embedding").ToList();  // warm-up
        var clock = Stopwatch.StartNew();
        var stage = model.Transform(view).GetColumn<VBuffer<float>>("Embedding").Select(v => v.DenseValues().ToArray()).ToList();
        var stageRate = count / clock.Elapsed.TotalSeconds;

        var decoded = ImageStore.FromDataView(mlContext, view, column, null, load);
        using var embedder = new ImageEmbedder(new RunFolder(run).Encoder, new ImageEmbedderOptions { BatchSize = 256, Threads = threads, Log = _ => { } });
        embedder.Embed(decoded.Subset(Enumerable.Range(0, Math.Min(256, count)).ToArray()));  // warm-up
        clock.Restart();
        var batched = embedder.Embed(decoded);
        var batchRate = count / clock.Elapsed.TotalSeconds;
        var torch = Embeddings.FromEncoder(Checkpoint.LoadEncoder(new RunFolder(run).Checkpoint), decoded);
        float Max(Func<int, int, float> difference) =>
            Enumerable.Range(0, count).Max(i => Enumerable.Range(0, batched.Dimension).Max(d => difference(i, d)));

        var (dnnTrain, dnnTest) = (int.Parse(Arg("--dnn-train", "3000")), int.Parse(Arg("--dnn-test", "1000")));
        var splitTrain = train.Subset(Enumerable.Range(0, dnnTrain).ToArray());
        var splitTest = test.Subset(Enumerable.Range(0, dnnTest).ToArray());
        var splitPaths = WritePngs(splitTrain, dnnTrain, Path.Combine(folder, "split-train")).Concat(WritePngs(splitTest, dnnTest, Path.Combine(folder, "split-test"))).ToList();
        var resnet = mlContext.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(mlContext.Transforms.ResizeImages("Image", 224, 224))
            .Append(mlContext.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(mlContext.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(mlContext, m.OutputColumn, m.InputColumn), "Pixels"));
        var splitView = SavedModel.PathView(mlContext, splitPaths, "ImagePath");
        var fitted = resnet.Fit(SavedModel.PathView(mlContext, splitPaths.Take(2), "ImagePath"));
        clock.Restart();
        var resnetFeatures = fitted.Transform(splitView).GetColumn<VBuffer<float>>("Features").SelectMany(v => v.DenseValues()).ToArray();
        var resnetRate = splitPaths.Count / clock.Elapsed.TotalSeconds;
        var resnetDimension = resnetFeatures.Length / splitPaths.Count;
        Embeddings Rows(float[] values, int dimension, int start, int rows, ImageStore labels) =>
            new(values[(start * dimension)..((start + rows) * dimension)], rows, dimension, labels.Labels);
        var resnetProbe = LinearEvaluation.Evaluate(mlContext, Rows(resnetFeatures, resnetDimension, 0, dnnTrain, splitTrain),
            Rows(resnetFeatures, resnetDimension, dnnTrain, dnnTest, splitTest)).Accuracy;
        var oursProbe = LinearEvaluation.Evaluate(mlContext, embedder.Embed(splitTrain), embedder.Embed(splitTest)).Accuracy;

        Console.WriteLine("| Scorer | Images/s | Linear probe on the split |");
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine($"| ML.NET embedding stage (`model.zip`: LoadImages → ResizeImages → {(decoded.Channels == 1 ? "ConvertToGrayscale → " : "")}ExtractPixels → ApplyOnnxModel), row by row from {count:N0} PNG paths | {stageRate:N0} | {oursProbe:P1} |");
        Console.WriteLine($"| `ImageEmbedder` (`encoder.onnx`, ONNX Runtime CPU, batch 256) on the decoded pixels | {batchRate:N0} ({batchRate / stageRate:F1}× the stage) | {oursProbe:P1} |");
        Console.WriteLine($"| ML.NET `DnnFeaturizeImage` ResNet18 (224 × 224 RGB, {resnetDimension}-d), row by row from {splitPaths.Count:N0} PNG paths | {resnetRate:N1} | {resnetProbe:P1} |");
        Console.WriteLine();
        // --dnn-fractions 0.01,0.1: the same two probes on stratified label samples (seed 0) of the split's training rows.
        foreach (var fraction in Arg("--dnn-fractions", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(f => double.Parse(f, System.Globalization.CultureInfo.InvariantCulture)))
        {
            var theirs = LinearEvaluation.Evaluate(mlContext, Rows(resnetFeatures, resnetDimension, 0, dnnTrain, splitTrain), Rows(resnetFeatures, resnetDimension, dnnTrain, dnnTest, splitTest), fraction).Accuracy;
            var ours = LinearEvaluation.Evaluate(mlContext, embedder.Embed(splitTrain), embedder.Embed(splitTest), fraction).Accuracy;
            Console.WriteLine($"| Probe at {LabelEfficiency.Percent(fraction)} of the split's labels | ML.NET `DnnFeaturizeImage` ResNet18 {theirs:P1} | this run's encoder {ours:P1} |");
        }
        Console.WriteLine($"Split for the probe column: the first {dnnTrain:N0} training and {dnnTest:N0} test images, ML.NET LbfgsMaximumEntropy on each scorer's features. " +
                          $"Parity on the {count:N0} test images: max |stage − ImageEmbedder| = {Max((i, d) => Math.Abs(stage[i][d] - batched.Row(i)[d])):G3}, " +
                          $"max |ImageEmbedder (ONNX Runtime) − TorchSharp| = {Max((i, d) => Math.Abs(batched.Row(i)[d] - torch.Row(i)[d])):G3}.");
        return 0;
    }
    finally
    {
        Directory.Delete(folder, recursive: true);
    }
}

static List<string> WritePngs(ImageStore images, int count, string folder)
{
    Directory.CreateDirectory(folder);
    return Enumerable.Range(0, count).Select(i =>
    {
        // Every channel (an RGB set's PNGs are RGB; a grayscale one's are grey).
        using var image = MLImage.CreateFromPixels(images.Width, images.Height, MLPixelFormat.Bgra32, images.Bgra(i));
        var path = Path.Combine(folder, $"{i:D5}.png");
        image.Save(path);
        return path;
    }).ToList();
}
