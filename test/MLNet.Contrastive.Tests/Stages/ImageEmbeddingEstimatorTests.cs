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
    [Test]
    public void CatalogNeverChangesTheCallersOptions()
    {
        var mlContext = new MLContext(0);
        var options = SmallRun();
        options.Pretrain.Method = new SimClrOptions { Temperature = 0.3 };
        var simclr = mlContext.SelfSupervised().SimClr(options);
        var rotation = mlContext.SelfSupervised().Rotation(options);
        options.Pretrain.Run.BatchSize = 7;
        ((SimClrOptions)options.Pretrain.Method).Temperature = 0.9;

        Assert.That(options.Pretrain.Method, Is.TypeOf<SimClrOptions>(), "the caller's method is untouched");
        Assert.That(simclr.Settings.Pretrain.Method, Is.TypeOf<SimClrOptions>().With.Property(nameof(SimClrOptions.Temperature)).EqualTo(0.3));
        Assert.That(simclr.Settings.Pretrain.Run.BatchSize, Is.EqualTo(64));
        Assert.That(rotation.Settings.Pretrain.Method, Is.TypeOf<RotationOptions>());
    }

    private static ImageEmbeddingEstimator.Options SmallRun() => new()
    {
        InputColumnName = nameof(TestData.ImageRow.ImagePath),
        Pretrain = new PretrainOptions { Run = { Epochs = 1, BatchSize = 64, Seed = 1 }, Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] } },
    };

    private static float[][] Embeddings(IDataView scored) =>
        scored.GetColumn<VBuffer<float>>("Embedding").Select(v => v.DenseValues().ToArray()).ToArray();

    [Test]
    public void PipelinesRejectAWrongInputColumnBeforeAnyTraining()
    {
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(new[] { new TestData.ImageRow { ImagePath = "a.png", Score = 1 } });
        // EstimatorChain.Fit asks every estimator's GetOutputSchema before fitting the first one.
        var wrongType = mlContext.Transforms.CopyColumns("Copy", nameof(TestData.ImageRow.Score))
            .Append(mlContext.SelfSupervised().SimClr(inputColumnName: nameof(TestData.ImageRow.Score)));
        Assert.That(() => wrongType.Fit(data),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Schema mismatch for input column 'Score'"));
        var missing = mlContext.Transforms.CopyColumns("Copy", nameof(TestData.ImageRow.Score))
            .Append(mlContext.SelfSupervised().SimClr(inputColumnName: "Picture"));
        Assert.That(() => missing.Fit(data), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Could not find input column 'Picture'"));
    }

    [Test]
    public void FittedStageMatchesTheEncoderAndSurvivesSaveAndLoad()
    {
        using var folder = TestData.NewFolder();
        var rows = TestData.WriteSampleImages(folder, 192);
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
            Assert.That(scored[0], Has.Length.EqualTo((16 + 32) * 4), "E: 2 × 2 regions of both stages");

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
        var loaded = SavedModel.WithFreshOnnxFileName(() => fresh.Model.Load(folder["model.zip"], out _));
        Assert.That(loaded, Is.InstanceOf<TransformerChain<ITransformer>>(), "a plain ML.NET chain, loadable without this library");
        reloaded = Embeddings(loaded.Transform(fresh.Data.LoadFromEnumerable(rows)));
        (loaded as IDisposable)?.Dispose();
        Assert.That(TestData.MaxDifference(scored, reloaded), Is.LessThanOrEqualTo(1e-5f));
        Assert.That(Directory.GetFiles(Path.GetTempPath(), "*.onnx"), Has.Length.EqualTo(tempOnnx), "no temporary ONNX files are left behind");

        // A fresh process with ML.NET alone (the sample app) gives the same embeddings.
        var sample = TestData.ScoreWithPlainMlNetApp(folder["model.zip"], folder.Path, folder["scores.csv"]);
        Assert.That(sample.Keys, Is.EqualTo(rows.Select(r => Path.GetFileName(r.ImagePath))));
        Assert.That(TestData.MaxDifference(scored, sample.Values.Select(v => v.Embedding).ToArray()), Is.LessThanOrEqualTo(1e-5f));
        // So does an app still on ML.NET 5.0.1 (SkiaSharp 2.88, ONNX Runtime 1.31).
        var mlNet5 = TestData.ScoreWithPlainMlNetApp(folder["model.zip"], folder.Path, folder["scores5.csv"], mlNet5: true);
        Assert.That(mlNet5.Keys, Is.EqualTo(sample.Keys));
        Assert.That(TestData.MaxDifference(scored, mlNet5.Values.Select(v => v.Embedding).ToArray()), Is.LessThanOrEqualTo(1e-5f));
    }

    private static float MaxDifference(float[][] rows, Embeddings other) =>
        rows.Select((row, i) => row.Zip(other.Row(i).ToArray(), (x, y) => Math.Abs(x - y)).Max()).Max();

    [Test]
    public void EmbeddingStageAndProbeAreOneSaveablePipeline()
    {
        using var folder = TestData.NewFolder();
        var rows = TestData.WriteSampleImages(folder, 256);
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(rows);
        // The README's pipeline: LoadImages → SimClr on the MLImage column → LinearProbe.
        var options = SmallRun();
        options.InputColumnName = "Image";
        var pipeline = mlContext.Transforms.LoadImages("Image", imageFolder: null, nameof(TestData.ImageRow.ImagePath))
            .Append(mlContext.SelfSupervised().SimClr(options))
            .Append(mlContext.SelfSupervised().LinearProbe(nameof(TestData.ImageRow.Label)));
        using var model = pipeline.Fit(data);
        var predicted = model.Transform(data).GetColumn<string>("PredictedLabel").ToArray();
        Assert.That(predicted.Zip(rows, (p, r) => p == r.Label).Count(x => x) / 256.0, Is.GreaterThan(0.5), "the probe learns the training labels");

        mlContext.Model.Save(model, data.Schema, folder["probe.zip"]);
        var loaded = SavedModel.WithFreshOnnxFileName(() => new MLContext(2).Model.Load(folder["probe.zip"], out _));
        Assert.That(loaded.Transform(data).GetColumn<string>("PredictedLabel"), Is.EqualTo(predicted));
        (loaded as IDisposable)?.Dispose();

        var sample = TestData.ScoreWithPlainMlNetApp(folder["probe.zip"], folder.Path, folder["scores.csv"]);
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
    [TestCase("dclw")]
    [TestCase("nnclr")]
    public void EveryMethodProducesTheSameKindOfEmbeddingStage(string method)
    {
        using var folder = TestData.NewFolder();
        var rows = TestData.WriteSampleImages(folder, 128);
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
            "dclw" => catalog.Dcl(options),
            "nnclr" => catalog.Nnclr(options),
            _ => catalog.Pretrain(options),
        };
        using var stage = estimator.Fit(data);
        Assert.That(stage.Pretraining.Info.Options.Method.Name, Is.EqualTo(method));
        var embeddings = Embeddings(stage.Transform(data));
        Assert.That(embeddings, Has.Length.EqualTo(128));
        Assert.That(embeddings.All(e => e.Length == (16 + 32) * 4 && e.All(float.IsFinite)), Is.True, "E: 2 × 2 regions of both stages");
    }
}

public class StageColumnTests
{
    private sealed class RowWithInnerNames
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
        public string Pixels { get; set; } = "";
        public string LoadedImage { get; set; } = "";
        public string ResizedImage { get; set; } = "";
        public string GrayImage { get; set; } = "";
        public string ProbeFeatures { get; set; } = "";
        public string ProbeLabelKey { get; set; } = "";
    }

    [Test]
    public void InputColumnsNamedLikeTheStagesInnerColumnsPassThroughAndTheEmbeddingIsAPlainVector()
    {
        using var folder = TestData.NewFolder();
        var rows = TestData.WriteSampleImages(folder, 64).Select((r, i) => new RowWithInnerNames
        {
            ImagePath = r.ImagePath, Label = r.Label, Pixels = $"p{i}", LoadedImage = $"l{i}", ResizedImage = $"r{i}", GrayImage = $"g{i}",
            ProbeFeatures = $"f{i}", ProbeLabelKey = $"k{i}",
        }).ToList();
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var pipeline = mlContext.SelfSupervised().SimClr(new ImageEmbeddingEstimator.Options
            {
                InputColumnName = nameof(RowWithInnerNames.ImagePath),
                Pretrain = new PretrainOptions { Run = { Epochs = 1, BatchSize = 32, Seed = 1 }, Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] } },
            })
            .Append(mlContext.SelfSupervised().LinearProbe());
        var expectedColumns = typeof(RowWithInnerNames).GetProperties().Select(p => p.Name).Concat(["Embedding", "Score", "PredictedLabel"]).ToList();
        using var model = pipeline.Fit(data);
        var scored = model.Transform(data);
        Assert.That(scored.Schema.Where(c => !c.IsHidden).Select(c => c.Name), Is.EquivalentTo(expectedColumns), "no inner column is left in the output");
        foreach (var name in new[] { "Pixels", "LoadedImage", "ResizedImage", "GrayImage", "ProbeFeatures", "ProbeLabelKey" })
            Assert.That(scored.GetColumn<string>(name), Is.EqualTo(rows.Select(r => (string)typeof(RowWithInnerNames).GetProperty(name)!.GetValue(r)!)), name);
        Assert.That(((VectorDataViewType)scored.Schema["Embedding"].Type).Dimensions, Is.EqualTo(new[] { (16 + 32) * 4 }), "a plain vector of E values, not [1, E]");
        Assert.That(scored.GetColumn<string>("PredictedLabel").Distinct().Count(), Is.GreaterThan(1));
    }
}
