using MLNet.Contrastive.Methods;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Stages;

public class ImageEmbeddingEstimatorTests
{
    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public float Score { get; set; }
        public string Label { get; set; } = "";
    }

    [Test]
    public void CatalogNeverChangesTheCallersOptions()
    {
        var mlContext = new MLContext(0);
        var options = SmallRun();
        options.Pretrain.Method = new SimClrOptions { Temperature = 0.3 };
        var simclr = mlContext.SelfSupervised().SimClr(options);
        var rotation = mlContext.SelfSupervised().Rotation(options);
        options.Pretrain.BatchSize = 7;
        ((SimClrOptions)options.Pretrain.Method).Temperature = 0.9;

        Assert.That(options.Pretrain.Method, Is.TypeOf<SimClrOptions>(), "the caller's method is untouched");
        Assert.That(simclr.Settings.Pretrain.Method, Is.TypeOf<SimClrOptions>().With.Property(nameof(SimClrOptions.Temperature)).EqualTo(0.3));
        Assert.That(simclr.Settings.Pretrain.BatchSize, Is.EqualTo(64));
        Assert.That(rotation.Settings.Pretrain.Method, Is.TypeOf<RotationOptions>());
    }

    private static ImageEmbeddingEstimator.Options SmallRun() => new()
    {
        InputColumnName = nameof(ImageRow.ImagePath),
        Pretrain = new PretrainOptions { Epochs = 1, BatchSize = 64, Seed = 1, Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] } },
    };

    /// <summary>The first <paramref name="count"/> sample images written as PNG files.</summary>
    private static List<ImageRow> WriteSampleImages(TestData.TempFolder folder, int count)
    {
        var sample = TestData.SampleTrain(count);
        var rows = new List<ImageRow>();
        for (var i = 0; i < count; i++)
        {
            var gray = sample.Pixels.AsSpan(i * 784, 784);
            var bgra = new byte[784 * 4];
            for (var p = 0; p < 784; p++) (bgra[p * 4], bgra[p * 4 + 1], bgra[p * 4 + 2], bgra[p * 4 + 3]) = (gray[p], gray[p], gray[p], 255);
            using var image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, bgra);
            var path = folder[$"img{i:D4}.png"];
            image.Save(path);
            rows.Add(new ImageRow { ImagePath = path, Label = sample.LabelNames![sample.Labels![i]] });
        }
        return rows;
    }

    private static float[][] Embeddings(IDataView scored) =>
        scored.GetColumn<VBuffer<float>>("Embedding").Select(v => v.DenseValues().ToArray()).ToArray();

    [Test]
    public void PipelinesRejectAWrongInputColumnBeforeAnyTraining()
    {
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(new[] { new ImageRow { ImagePath = "a.png", Score = 1 } });
        // EstimatorChain.Fit asks every estimator's GetOutputSchema before fitting the first one.
        var wrongType = mlContext.Transforms.CopyColumns("Copy", nameof(ImageRow.Score))
            .Append(mlContext.SelfSupervised().SimClr(inputColumnName: nameof(ImageRow.Score)));
        Assert.That(() => wrongType.Fit(data),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Schema mismatch for input column 'Score'"));
        var missing = mlContext.Transforms.CopyColumns("Copy", nameof(ImageRow.Score))
            .Append(mlContext.SelfSupervised().SimClr(inputColumnName: "Picture"));
        Assert.That(() => missing.Fit(data), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Could not find input column 'Picture'"));
    }

    [Test]
    public void FittedStageMatchesTheEncoderAndSurvivesSaveAndLoad()
    {
        using var folder = TestData.NewFolder();
        var rows = WriteSampleImages(folder, 192);
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var tempOnnx = Directory.GetFiles(Path.GetTempPath(), "*.onnx").Length;

        float[][] scored, reloaded;
        string onnxPath;
        using (var stage = mlContext.SelfSupervised().SimClr(SmallRun()).Fit(data))
        {
            onnxPath = stage.OnnxPath;
            scored = Embeddings(stage.Transform(data));
            Assert.That(scored, Has.Length.EqualTo(192));
            Assert.That(scored[0], Has.Length.EqualTo(32));

            // The row-by-row ML.NET stage, the batched ImageEmbedder and TorchSharp agree.
            var store = ImageStore.Load(folder.Path);
            using var embedder = new ImageEmbedder(stage.OnnxPath);
            var batched = embedder.Embed(store);
            var torch = MLNet.Contrastive.Metrics.Embeddings.FromEncoder(stage.Encoder, store);
            Assert.That(MaxDifference(scored, batched), Is.LessThanOrEqualTo(1e-5f));
            Assert.That(MaxDifference(scored, torch), Is.LessThanOrEqualTo(1e-4f));

            mlContext.Model.Save(stage, data.Schema, folder["model.zip"]);
        }
        Assert.That(File.Exists(onnxPath), Is.False, "the stage deletes its temporary ONNX file");

        var fresh = new MLContext(1);
        var loaded = fresh.Model.Load(folder["model.zip"], out _);
        Assert.That(loaded, Is.InstanceOf<TransformerChain<ITransformer>>(), "a plain ML.NET chain, loadable without this library");
        reloaded = Embeddings(loaded.Transform(fresh.Data.LoadFromEnumerable(rows)));
        (loaded as IDisposable)?.Dispose();
        Assert.That(MaxDifference(scored, reloaded), Is.LessThanOrEqualTo(1e-5f));
        Assert.That(Directory.GetFiles(Path.GetTempPath(), "*.onnx"), Has.Length.EqualTo(tempOnnx), "no temporary ONNX files are left behind");

        // A fresh process with ML.NET alone (the sample app) gives the same embeddings.
        var sample = ScoreWithPlainMlNetApp(folder["model.zip"], folder.Path, folder["scores.csv"]);
        Assert.That(sample.Keys, Is.EqualTo(rows.Select(r => Path.GetFileName(r.ImagePath))));
        Assert.That(MaxDifference(scored, sample.Values.Select(v => v.Embedding).ToArray()), Is.LessThanOrEqualTo(1e-5f));
    }

    /// <summary>Runs docs/samples/ScoreInPlainMLNet (which references no MLNet.Contrastive) in its own process.</summary>
    private static Dictionary<string, (string? Label, float[] Embedding)> ScoreWithPlainMlNetApp(string model, string images, string csv)
    {
        var root = TestContext.CurrentContext.TestDirectory;
        while (!File.Exists(Path.Combine(root, "MLNet.Contrastive.sln"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("repository root");
        var project = Path.Combine(root, "docs", "samples", "ScoreInPlainMLNet");
        Assert.That(File.ReadAllText(Path.Combine(project, "ScoreInPlainMLNet.csproj")), Does.Not.Contain("ProjectReference"));
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", ["run", "--project", project, "-c", "Release", "--", model, images, csv])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, output.Result + errors);
        var labelled = File.ReadLines(csv).First().StartsWith("file,predicted_label,", StringComparison.Ordinal);
        return File.ReadLines(csv).Skip(1).Select(line => line.Split(',')).ToDictionary(f => f[0], f =>
            (labelled ? f[1] : null, f.Skip(labelled ? 2 : 1).Select(v => float.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()));
    }

    private static float MaxDifference(float[][] rows, float[][] other) =>
        rows.Zip(other, (a, b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max()).Max();

    private static float MaxDifference(float[][] rows, Embeddings other) =>
        rows.Select((row, i) => row.Zip(other.Row(i).ToArray(), (x, y) => Math.Abs(x - y)).Max()).Max();

    [Test]
    public void EmbeddingStageAndProbeAreOneSaveablePipeline()
    {
        using var folder = TestData.NewFolder();
        var rows = WriteSampleImages(folder, 256);
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(rows);
        // The README's pipeline: LoadImages → SimClr on the MLImage column → LinearProbe.
        var options = SmallRun();
        options.InputColumnName = "Image";
        var pipeline = mlContext.Transforms.LoadImages("Image", imageFolder: null, nameof(ImageRow.ImagePath))
            .Append(mlContext.SelfSupervised().SimClr(options))
            .Append(mlContext.SelfSupervised().LinearProbe(nameof(ImageRow.Label)));
        using var model = pipeline.Fit(data);
        var predicted = model.Transform(data).GetColumn<string>("PredictedLabel").ToArray();
        Assert.That(predicted.Zip(rows, (p, r) => p == r.Label).Count(x => x) / 256.0, Is.GreaterThan(0.5), "the probe learns the training labels");

        mlContext.Model.Save(model, data.Schema, folder["probe.zip"]);
        var loaded = new MLContext(2).Model.Load(folder["probe.zip"], out _);
        Assert.That(loaded.Transform(data).GetColumn<string>("PredictedLabel"), Is.EqualTo(predicted));
        (loaded as IDisposable)?.Dispose();

        var sample = ScoreWithPlainMlNetApp(folder["probe.zip"], folder.Path, folder["scores.csv"]);
        Assert.That(sample.Values.Select(v => v.Label), Is.EqualTo(predicted));
    }

    [TestCase("rotation")]
    [TestCase("jigsaw")]
    [TestCase("triplet")]
    [TestCase("nce")]
    [TestCase("byol")]
    [TestCase("simsiam")]
    [TestCase("moco")]
    [TestCase("barlow")]
    [TestCase("vicreg")]
    public void EveryMethodProducesTheSameKindOfEmbeddingStage(string method)
    {
        using var folder = TestData.NewFolder();
        var rows = WriteSampleImages(folder, 128);
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var catalog = mlContext.SelfSupervised();
        var options = SmallRun();
        options.Pretrain.Method = PretrainingMethods.Defaults(method);
        if (options.Pretrain.Method is MoCoOptions moco) moco.QueueSize = 256;
        var estimator = method switch
        {
            "rotation" => catalog.Rotation(options),
            "jigsaw" => catalog.Jigsaw(options),
            "triplet" => catalog.Triplet(options),
            "nce" => catalog.Nce(options),
            _ => catalog.Pretrain(options),
        };
        using var stage = estimator.Fit(data);
        Assert.That(stage.Pretraining.Info.Options.Method.Name, Is.EqualTo(method));
        var embeddings = Embeddings(stage.Transform(data));
        Assert.That(embeddings, Has.Length.EqualTo(128));
        Assert.That(embeddings.All(e => e.Length == 32 && e.All(float.IsFinite)), Is.True);
    }
}
