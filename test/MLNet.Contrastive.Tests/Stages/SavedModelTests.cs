using Microsoft.ML;
using MLNet.Contrastive.Stages;

namespace MLNet.Contrastive.Tests.Stages;

public class SavedModelTests
{
    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
    }

    [Test]
    public void AnOnnxGraphInAFileNamedOrtIsRefusedAndAnotherLoadSucceeds()
    {
        // The cause: ONNX Runtime reads a file whose name ends in ".ort" as its flatbuffer format, whatever it holds —
        // and ML.NET names an embedded graph's temporary file at random, ".ort" one time in 32,768.
        using var folder = TestData.NewFolder();
        MLNet.Contrastive.Runtime.TorchRuntime.Initialize();
        MLNet.Contrastive.Onnx.EncoderOnnxExporter.Export(new MLNet.Contrastive.Models.ResNetEncoder(MLNet.Contrastive.Models.EncoderOptions.For(1, 28)), folder["model.onnx"]);
        File.Copy(folder["model.onnx"], folder["abcdefgh.ort"]);
        using (new Microsoft.ML.OnnxRuntime.InferenceSession(folder["model.onnx"])) { }
        var refused = Assert.Throws<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>(() => new Microsoft.ML.OnnxRuntime.InferenceSession(folder["abcdefgh.ort"]).Dispose())!;
        Assert.That(SavedModel.IsOrtFileNameFailure(new InvalidOperationException("Error during class instantiation", refused)), Is.True);

        // The remedy: load again (a new random name). Other failures are not retried.
        var attempts = 0;
        Assert.That(SavedModel.WithFreshOnnxFileName(() => ++attempts == 1 ? throw new InvalidOperationException("wrapped", refused) : "loaded"), Is.EqualTo("loaded"));
        Assert.That(attempts, Is.EqualTo(2));
        attempts = 0;
        Assert.That(() => SavedModel.WithFreshOnnxFileName<string>(() => { attempts++; throw new InvalidDataException("damaged"); }), Throws.TypeOf<InvalidDataException>());
        Assert.That(attempts, Is.EqualTo(1));
    }

    [Test]
    public void TruncatedModelZipIsNamed()
    {
        using var folder = TestData.NewFolder();
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(new[] { new Row { ImagePath = "a.png" } });
        mlContext.Model.Save(mlContext.Transforms.CopyColumns("Copy", nameof(Row.ImagePath)).Fit(data), data.Schema, folder["whole.zip"]);
        File.WriteAllBytes(folder["cut.zip"], File.ReadAllBytes(folder["whole.zip"])[..200]);
        Assert.That(() => SavedModel.Load(mlContext, folder["cut.zip"], out _),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["cut.zip"] + ": not a readable ML.NET model"));
        File.WriteAllText(folder["text.zip"], "not a zip");
        Assert.That(() => SavedModel.Load(mlContext, folder["text.zip"], out _),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["text.zip"] + ": not a readable ML.NET model"));
        Assert.That(() => SavedModel.Load(mlContext, folder["none.zip"], out _), Throws.TypeOf<FileNotFoundException>().With.Message.Contains("none.zip"));
    }

    [Test]
    public void ADamagedEncoderInsideTheModelIsNamedByItsRealCause()
    {
        using var folder = TestData.NewFolder();
        var mlContext = new MLContext(0);
        var paths = SavedModel.PathView(mlContext, [], nameof(Row.ImagePath));
        using (var stage = ImageEmbeddingEstimator.CreateStage(mlContext, paths,
                   new MLNet.Contrastive.Training.Pretrainer(new MLNet.Contrastive.Training.PretrainOptions { Run = { Epochs = 1, BatchSize = 4, Threads = 2, Device = "cpu" },
                       Encoder = new MLNet.Contrastive.Models.EncoderOptions { StemWidth = 16, StageWidths = [16, 32] } }).Fit(TestData.SampleTrain(4)),
                   new ImageEmbeddingEstimator.Options { InputColumnName = nameof(Row.ImagePath) }))
            mlContext.Model.Save(stage, paths.Schema, folder["model.zip"]);
        // The largest entry of model.zip is the embedded ONNX graph; overwrite it with bytes that are no protobuf.
        using (var zip = System.IO.Compression.ZipFile.Open(folder["model.zip"], System.IO.Compression.ZipArchiveMode.Update))
        {
            var graph = zip.Entries.MaxBy(e => e.Length)!;
            var name = graph.FullName;
            graph.Delete();
            using var stream = zip.CreateEntry(name).Open();
            stream.Write(Enumerable.Repeat((byte)0xFF, 4096).ToArray());
        }
        Assert.That(() => SavedModel.Load(mlContext, folder["model.zip"], out _),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["model.zip"] + ": not a readable ML.NET model (")
                .And.Message.Not.Contains("target of an invocation"));
    }

    [Test]
    public void ModelAndOnnxFromDifferentRunsAreNamed()
    {
        using var folder = TestData.NewFolder();
        var mlContext = new MLContext(0);
        var images = TestData.SampleTrain(4);
        var paths = SavedModel.PathView(mlContext, [], nameof(Row.ImagePath));
        MLNet.Contrastive.Models.ResNetEncoder Encoder(int seed)
        {
            TorchSharp.torch.manual_seed(seed);
            return new MLNet.Contrastive.Models.ResNetEncoder(new MLNet.Contrastive.Models.EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        }
        using var stage = ImageEmbeddingEstimator.CreateStage(mlContext, paths,
            new MLNet.Contrastive.Training.Pretrainer(new MLNet.Contrastive.Training.PretrainOptions { Run = { Epochs = 1, BatchSize = 4, Threads = 2, Device = "cpu" },
                Encoder = new MLNet.Contrastive.Models.EncoderOptions { StemWidth = 16, StageWidths = [16, 32] } }).Fit(images),
            new ImageEmbeddingEstimator.Options { InputColumnName = nameof(Row.ImagePath), OnnxPath = folder["encoder.onnx"] });

        using (var same = new MLNet.Contrastive.Onnx.ImageEmbedder(folder["encoder.onnx"]))
            Assert.That(() => SavedModel.CheckSameEncoder(mlContext, "model.zip", stage, nameof(Row.ImagePath), "encoder.onnx", same, images), Throws.Nothing);
        MLNet.Contrastive.Onnx.EncoderOnnxExporter.Export(Encoder(7), folder["other.onnx"]);
        using var other = new MLNet.Contrastive.Onnx.ImageEmbedder(folder["other.onnx"]);
        Assert.That(() => SavedModel.CheckSameEncoder(mlContext, "model.zip", stage, nameof(Row.ImagePath), "other.onnx", other, images),
            Throws.TypeOf<InvalidDataException>().With.Message.EqualTo("model.zip and other.onnx hold different encoders (files of two runs?); use the files of one run."));
    }

    [Test]
    public void ModelOfAnotherKindIsNamed()
    {
        using var folder = TestData.NewFolder();
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(new[] { new Row { ImagePath = "a.png" } });
        mlContext.Model.Save(mlContext.Transforms.CopyColumns("Copy", nameof(Row.ImagePath)).Fit(data), data.Schema, folder["other.zip"]);
        var model = SavedModel.Load(mlContext, folder["other.zip"], out var schema);
        Assert.That(() => SavedModel.PathColumn(folder["other.zip"], schema, model, "Embedding"),
            Throws.TypeOf<InvalidDataException>().With.Message.EqualTo($"{folder["other.zip"]}: the model has no 'Embedding' output column; it is not an MLNet.Contrastive model of that kind."));
    }
}
