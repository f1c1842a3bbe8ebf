using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Methods;

public class ClipTests
{
    private static readonly string[] Classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The sample's images of three easy classes, named, captioned by their attributes.</summary>
    private static ImageStore Captioned(int first, int count)
    {
        var sample = TestData.SampleTrain(first + count);
        var named = sample.WithLabels(sample.Labels!, Classes);
        var keep = Enumerable.Range(first, count).Where(i => named.Labels![i] is 1 or 7 or 8).ToArray();
        var subset = named.Subset(keep);
        return subset.WithPairs(TextPairs.Create(AttributeCaptions.Create(subset)));
    }

    private static readonly Lazy<(PretrainResult Run, ImageStore Test)> Trained = new(() =>
    {
        var train = Captioned(0, 1500);
        var options = new PretrainOptions
        {
            Method = new ClipOptions { MaxLogitScale = 30 }, Run = { Epochs = 6, BatchSize = 64, Seed = 1, Threads = 2, Device = "cpu" },
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        };
        return (new Pretrainer(options).Fit(train), Captioned(1500, 600));
    });

    [Test]
    public void ZeroShotNamesTheClassesOfHeldOutImagesAndAgreesWithTheNearestPrompt()
    {
        var (run, test) = Trained.Value;
        var model = PretrainedClip.From(run);
        Assert.That(model.Model.LogitScale, Is.LessThanOrEqualTo(30 + 1e-3), "the learned logit scale stays within its clamp");
        var classes = new[] { "Trouser", "Sneaker", "Bag" };
        var mlContext = new MLContext(0);
        using var folder = TestData.NewFolder();
        var rows = Enumerable.Range(0, test.Count).Select(i =>
        {
            using var image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, test.Bgra(i));
            var path = folder[$"img{i:D4}.png"];
            image.Save(path);
            return new TestData.ImageRow { ImagePath = path, Label = Classes[test.Labels![i]] };
        }).ToList();
        var data = mlContext.Data.LoadFromEnumerable(rows);

        using var stage = mlContext.SelfSupervised().ZeroShotClassify(model, classes, nameof(TestData.ImageRow.ImagePath)).Fit(data);
        var scored = stage.Transform(data);
        var predicted = scored.GetColumn<uint>("PredictedLabel").Select(k => classes[k - 1]).ToArray();
        var accuracy = predicted.Zip(rows).Count(p => p.First == p.Second.Label) / (double)rows.Count;
        Assert.That(accuracy, Is.GreaterThan(0.9), $"zero-shot accuracy {accuracy:P1} on {rows.Count} held-out images");

        // The nearest prompt by TorchSharp's towers, batched.
        using var images = test.Batch(Enumerable.Range(0, test.Count).ToArray());
        int[] nearest;
        using (no_grad())
            nearest = model.Model.ImageEmbeddings(images).mm(stage.PromptEmbeddings.t()).argmax(1).data<long>().Select(i => (int)i).ToArray();
        Assert.That(predicted, Is.EqualTo(nearest.Select(i => classes[i]).ToArray()), "PredictedLabel is the nearest prompt");

        var similarity = scored.GetColumn<float[]>("Similarity").First();
        using (no_grad())
        {
            var expected = model.Model.ImageEmbeddings(images[..1]).mm(stage.PromptEmbeddings.t()).data<float>().ToArray();
            Assert.That(similarity, Is.EqualTo(expected).Within(1e-4), "ONNX Runtime's similarities equal TorchSharp's");
        }

        var keyed = mlContext.Transforms.Conversion.MapValueToKey("Label", nameof(TestData.ImageRow.Label),
            keyData: mlContext.Data.LoadFromEnumerable(classes.Select(c => new Name { Value = c }))).Fit(data).Transform(data);
        var metrics = mlContext.MulticlassClassification.Evaluate(stage.Transform(keyed));
        Assert.That(metrics.MicroAccuracy, Is.EqualTo(accuracy).Within(1e-9), "ML.NET's evaluator agrees");

        var path = folder["zeroshot.zip"];
        mlContext.Model.Save(stage, data.Schema, path);
        var loaded = SavedModel.WithFreshOnnxFileName(() => new MLContext(1).Model.Load(path, out _));
        var reloaded = loaded.Transform(data).GetColumn<uint>("PredictedLabel").Select(k => classes[k - 1]);
        Assert.That(reloaded, Is.EqualTo(predicted), "the saved model.zip predicts the same in a new MLContext");
    }

    [Test]
    public void TowersExportToOnnxThatMatchesTorchSharp()
    {
        var (run, test) = Trained.Value;
        var clip = PretrainedClip.From(run).Model;
        using var folder = TestData.NewFolder();
        var textPath = folder["text.onnx"];
        var imagePath = folder["image.onnx"];
        ClipOnnxExporter.ExportTextTower(clip, textPath);
        ClipOnnxExporter.ExportImageTower(clip, imagePath, new EncoderOnnxOptions { OutputName = "ImageEmbedding" });

        var pairs = (TextPairs)test.Pairs!;
        var indices = Enumerable.Range(0, 8).ToArray();
        using var features = pairs.Batch(indices);
        using var images = test.Batch(indices);
        float[] expectedText, expectedImage;
        using (no_grad())
        {
            expectedText = clip.PairedEmbeddings(features).data<float>().ToArray();
            expectedImage = clip.ImageEmbeddings(images).data<float>().ToArray();
        }
        using (var session = new InferenceSession(textPath))
        {
            var input = new DenseTensor<float>(features.data<float>().ToArray(), [8, pairs.Dimension]);
            using var output = session.Run([NamedOnnxValue.CreateFromTensor("TextFeatures", input)]);
            Assert.That(output.Single().AsEnumerable<float>().ToArray(), Is.EqualTo(expectedText).Within(1e-5));
        }
        using (var session = new InferenceSession(imagePath))
        {
            var input = new DenseTensor<float>((images * 255).data<float>().ToArray(), [8, 1, 28, 28]);
            using var output = session.Run([NamedOnnxValue.CreateFromTensor("Pixels", input)]);
            Assert.That(output.Single().AsEnumerable<float>().ToArray(), Is.EqualTo(expectedImage).Within(1e-4));
        }
    }

    [Test]
    public void TheTextStageScoresCaptionsInMLNetAsTheTowerDoes()
    {
        var (run, test) = Trained.Value;
        var clip = PretrainedClip.From(run);
        var captions = ((TextPairs)test.Pairs!).Texts.Take(6).Append("A Bag, LIGHT!").ToList();
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(captions.Select(c => new Caption { Text = c }));

        using var stage = mlContext.SelfSupervised().ClipTextEmbedding(clip).Fit(data);
        var scored = stage.Transform(data).GetColumn<float[]>("TextEmbedding").ToArray();

        var features = TextPairs.Create(captions).Batch(Enumerable.Range(0, captions.Count).ToArray());
        float[] expected;
        using (no_grad()) expected = clip.Model.PairedEmbeddings(features).data<float>().ToArray();
        Assert.That(scored.SelectMany(e => e).ToArray(), Is.EqualTo(expected).Within(1e-5), "ML.NET's text chain + ONNX Runtime = the tower in TorchSharp");
        Assert.That(scored.Select(e => Math.Sqrt(e.Sum(v => v * v))), Is.All.EqualTo(1.0).Within(1e-5));

        using var folder = TestData.NewFolder();
        mlContext.Model.Save(stage, data.Schema, folder["text.zip"]);
        var loaded = SavedModel.WithFreshOnnxFileName(() => new MLContext(1).Model.Load(folder["text.zip"], out _)).Transform(data).GetColumn<float[]>("TextEmbedding").ToArray();
        Assert.That(loaded.SelectMany(e => e).ToArray(), Is.EqualTo(scored.SelectMany(e => e).ToArray()), "the saved model.zip scores the same");
    }

    private sealed class Caption
    {
        public string Text { get; set; } = "";
    }

    [Test]
    public void ImagesPairedWithImagesTrainTwoEncoders()
    {
        var sample = TestData.SampleTrain(256);
        // The second "camera": the same objects at 20 px.
        var second = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, new ImageLoadOptions { Height = 20, Width = 20 }).Subset(Enumerable.Range(0, 256).ToArray());
        var run = new Pretrainer(new PretrainOptions
        {
            Method = new ClipOptions(), Run = { Epochs = 2, BatchSize = 64, Seed = 1, Threads = 2, Device = "cpu" },
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        }).Fit(sample.WithPairs(new ImagePairs(second)));
        var clip = (Clip)run.Method;
        Assert.That(clip.Pairing, Is.EqualTo(Pairing.Image));
        Assert.That(clip.PairedEncoder, Is.Not.Null);
        Assert.That(((ClipOptions)run.Options.Method).PairedHeight, Is.EqualTo(20), "the checkpoint records the second images' size");
        Assert.That(run.History.Steps.All(s => double.IsFinite(s.Loss)), Is.True);

        using var folder = TestData.NewFolder();
        ClipOnnxExporter.ExportPairedImageTower(clip, folder["paired.onnx"], new EncoderOnnxOptions { Height = 20, Width = 20 });
        var indices = Enumerable.Range(0, 4).ToArray();
        using var images = second.Batch(indices);
        clip.eval();
        float[] expected;
        using (no_grad()) expected = clip.PairedEmbeddings(images).data<float>().ToArray();
        using var session = new InferenceSession(folder["paired.onnx"]);
        var input = new DenseTensor<float>((images * 255).data<float>().ToArray(), [4, 1, 20, 20]);
        using var output = session.Run([NamedOnnxValue.CreateFromTensor("Pixels", input)]);
        Assert.That(output.Single().AsEnumerable<float>().ToArray(), Is.EqualTo(expected).Within(1e-4), "the second images' tower exports like the first");
    }

    [Test]
    public void TheCheckpointRebuildsBothTowersAndTheResolvedSettings()
    {
        using var folder = TestData.NewFolder();
        var data = Captioned(0, 400);
        var run = new Pretrainer(new PretrainOptions
        {
            Method = new ClipOptions { EmbeddingDimension = 48, TextHiddenDimension = 64, InitialTemperature = 0.1 }, Run = { Epochs = 1, BatchSize = 32, Seed = 2, Threads = 2, Device = "cpu" }, Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, CheckpointPath = folder["c.bin"],
        }).Fit(data);

        var loaded = PretrainedClip.Load(folder["c.bin"]);
        var settings = (ClipOptions)loaded.Model.Options;
        Assert.That((settings.Pairing, settings.EmbeddingDimension, settings.TextHiddenDimension, settings.InitialTemperature),
            Is.EqualTo((Pairing.Text, 48, 64, 0.1)));
        Assert.That(loaded.ImageShape, Is.EqualTo((1, 28, 28)));
        Assert.That(loaded.Model.LogitScale, Is.EqualTo(((Clip)run.Method).LogitScale).Within(1e-6));
        var trained = run.Method.state_dict();
        foreach (var (name, tensor) in loaded.Model.state_dict())
            Assert.That(TestData.Same(tensor, trained[name]), Is.True, name);
        Assert.That(() => PretrainedClip.Load(SimClrCheckpoint(folder)), Throws.ArgumentException.With.Message.Contains("'simclr' run"));
    }

    private static string SimClrCheckpoint(TestData.TempFolder folder)
    {
        new Pretrainer(new PretrainOptions
        {
            Run = { Epochs = 1, BatchSize = 32, Device = "cpu", Threads = 2 }, Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, CheckpointPath = folder["s.bin"],
        }).Fit(TestData.SampleTrain(64));
        return folder["s.bin"];
    }

    [Test]
    public void TheCatalogTrainsOnAnImageColumnAndACaptionColumn()
    {
        using var folder = TestData.NewFolder();
        var rows = TestData.WriteSampleImages(folder, 64).Select((r, i) => new CaptionedRow { ImagePath = r.ImagePath, Caption = $"a photo of a {r.Label}, number {i % 4}" }).ToList();
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var estimator = mlContext.SelfSupervised().Clip(nameof(CaptionedRow.Caption), inputColumnName: nameof(CaptionedRow.ImagePath), epochs: 1, batchSize: 32);
        using var stage = estimator.Fit(data);

        var clip = PretrainedClip.From(stage.Pretraining);
        Assert.That(clip.Model.Pairing, Is.EqualTo(Pairing.Text));
        Assert.That(stage.Transform(data).GetColumn<float[]>("Embedding").First(), Has.Length.EqualTo(stage.Encoder.EmbeddingDimension));
        Assert.That(() => mlContext.SelfSupervised().Clip("Missing", inputColumnName: nameof(CaptionedRow.ImagePath), epochs: 1, batchSize: 32).Fit(data),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Could not find paired column 'Missing'"));
    }

    private sealed class CaptionedRow
    {
        public string ImagePath { get; set; } = "";
        public string Caption { get; set; } = "";
    }

    [Test]
    public void UnpairedImagesAreRefusedWithWhatIsMissing()
    {
        var error = Assert.Throws<ArgumentException>(() => new Pretrainer(new PretrainOptions { Method = new ClipOptions(), Run = { Epochs = 1, BatchSize = 32, Device = "cpu" }}).Fit(TestData.SampleTrain(64)));
        Assert.That(error!.Message, Does.Contain("caption or a second image"));
    }

    private sealed class Name
    {
        public string Value { get; set; } = "";
    }
}
