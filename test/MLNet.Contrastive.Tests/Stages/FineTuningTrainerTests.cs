using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Stages;

public class FineTuningTrainerTests
{
    private static EncoderOptions Small => new() { StemWidth = 16, StageWidths = [16, 32] };

    [Test]
    public void FineTuningChangesTheEncoderAndBeatsItsFrozenProbe()
    {
        var data = TestData.SampleTrain(1500);
        var (train, test) = (data.Subset(Enumerable.Range(0, 1000).ToArray()), data.Subset(Enumerable.Range(1000, 500).ToArray()));
        var mlContext = new MLContext(0);
        var pretraining = new Pretrainer(new PretrainOptions { Run = { Epochs = 2, BatchSize = 100, Seed = 1, Threads = 2, Device = "cpu" }, Encoder = Small }, mlContext).Fit(train);
        var pretrainedWeights = pretraining.Encoder.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        var probe = LinearEvaluation.Evaluate(mlContext, Embeddings.FromEncoder(pretraining.Encoder, train), Embeddings.FromEncoder(pretraining.Encoder, test)).Accuracy;

        using var stage = new FineTuningTrainer(mlContext, new FineTuningTrainer.Options
        {
            Pretrained = PretrainedEncoder.From(pretraining), Run = { Epochs = 40, BatchSize = 100, Seed = 1, Threads = 2, Device = "cpu" },
        }).Fit(train, train.LabelNames!);
        var fineTuned = stage.Evaluate(mlContext, test);

        Assert.That(stage.Training.Info.InitializedFrom, Is.EqualTo("the simclr run"));
        Assert.That(TestData.Same(stage.Encoder.state_dict()["blocks.1.conv2.weight"], pretrainedWeights["blocks.1.conv2.weight"]), Is.False, "fine-tuning changes the encoder");
        Assert.That(pretraining.Encoder.state_dict().All(p => TestData.Same(p.Value, pretrainedWeights[p.Key])), Is.True, "and leaves the pretrained one as it was");

        // ML.NET's classifier, a linear map of the network's logits fitted on the unaugmented labelled images, scores at
        // least as well as the network's own argmax (here it corrects the shift between augmented and plain images).
        var network = stage.Network;
        var predicted = Embeddings.FromModule(network, x => network.Logits(x).argmax(1, keepdim: true).to(TorchSharp.torch.ScalarType.Float32), 1, test).Values;
        var networkAccuracy = predicted.Where((p, i) => (int)p == test.Labels![i]).Count() / (double)test.Count;
        Assert.That(fineTuned.MicroAccuracy, Is.GreaterThanOrEqualTo(networkAccuracy - 0.01), $"stage {fineTuned.MicroAccuracy:P1}, network {networkAccuracy:P1}");
        Assert.That(fineTuned.MicroAccuracy, Is.GreaterThan(probe + 0.01), $"fine-tuned {fineTuned.MicroAccuracy:P1}, frozen probe {probe:P1}");

    }

    [Test]
    public void FromScratchTheStageTakesTheTrainingImagesSize()
    {
        // 96 px (the ImageNet-style stem): the stage once assumed 28 px without a pretrained run, and ONNX Runtime
        // refused the export's pooling windows (found by demo --image-size 96).
        var data = MLNet.Contrastive.Data.ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, new MLNet.Contrastive.Data.ImageLoadOptions { Height = 96, Width = 96 });
        var train = data.Subset(Enumerable.Range(0, 64).ToArray());
        var mlContext = new MLContext(0);
        using var stage = new FineTuningTrainer(mlContext, new FineTuningTrainer.Options
        {
            Encoder = EncoderOptions.For(1, 96), Run = { Epochs = 1, BatchSize = 32, Seed = 1, Threads = 2, Device = "cpu" },
        }).Fit(train, train.LabelNames!);
        Assert.That(stage.Evaluate(mlContext, data.Subset(Enumerable.Range(64, 16).ToArray())).MicroAccuracy, Is.InRange(0.0, 1.0));
    }

    [Test]
    public void StageIsAnMLNetMulticlassModelThatLoadsInPlainMLNet()
    {
        using var folder = TestData.NewFolder();
        var rows = TestData.WriteSampleImages(folder, 200);
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey(nameof(TestData.ImageRow.Label))
            .Append(mlContext.SelfSupervised().FineTune(new FineTuningTrainer.Options
            {
                InputColumnName = nameof(TestData.ImageRow.ImagePath), Encoder = Small, Run = { Epochs = 3, BatchSize = 50, Seed = 2, Threads = 2, Device = "cpu" },
            }));
        using var model = pipeline.Fit(data);
        var scored = model.Transform(data);
        var metrics = mlContext.MulticlassClassification.Evaluate(scored);
        Assert.That(metrics.MicroAccuracy, Is.GreaterThan(0.4), "ten classes: chance is 10 %");
        Assert.That(scored.Schema["Score"].Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, 10)));
        Assert.That(scored.Schema["PredictedLabel"].Type, Is.EqualTo(scored.Schema["Label"].Type), "PredictedLabel has the label's key type");
        var scores = Scores(scored);

        // Saved without the label mapping (as the CLI does), with MapKeyToValue: image paths in, class names out.
        var stage = model.LastTransformer;
        var paths = mlContext.Transforms.SelectColumns(nameof(TestData.ImageRow.ImagePath)).Fit(data).Transform(data);
        var names = mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(stage.Transform(paths));
        var predicted = names.Transform(stage.Transform(paths)).GetColumn<string>("PredictedLabel").ToArray();
        mlContext.Model.Save(new TransformerChain<ITransformer>([.. stage.Chain, names]), paths.Schema, folder["model.zip"]);

        var plain = new MLContext(1);
        var loaded = SavedModel.WithFreshOnnxFileName(() => plain.Model.Load(folder["model.zip"], out _));
        Assert.That(loaded, Is.InstanceOf<TransformerChain<ITransformer>>());
        var reloaded = loaded.Transform(paths);
        Assert.That(TestData.MaxDifference(Scores(reloaded), scores), Is.LessThanOrEqualTo(1e-4f));
        Assert.That(reloaded.GetColumn<string>("PredictedLabel"), Is.EqualTo(predicted));
        (loaded as IDisposable)?.Dispose();

        var app = TestData.ScoreWithPlainMlNetApp(folder["model.zip"], folder.Path, folder["scores.csv"]);
        Assert.That(app.Values.Select(v => v.Label), Is.EqualTo(predicted));
        Assert.That(TestData.MaxDifference(app.Values.Select(v => v.Embedding).ToArray(), scores), Is.LessThanOrEqualTo(1e-4f));
    }

    [Test]
    public void TextLabelsAndMissingColumnsAreRefusedBeforeTraining()
    {
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(new[] { new TestData.ImageRow { ImagePath = "a.png", Label = "Bag" } });
        var catalog = mlContext.SelfSupervised();
        Assert.That(() => catalog.FineTune(inputColumnName: nameof(TestData.ImageRow.ImagePath)).Fit(data),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Schema mismatch for label column 'Label': expected Key<UInt32>"));
        Assert.That(() => catalog.FineTune(labelColumnName: "Class", inputColumnName: nameof(TestData.ImageRow.ImagePath)).Fit(data),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Could not find label column 'Class'"));
        // In a pipeline, ML.NET's own schema checks speak before any image is read.
        var chain = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(catalog.FineTune(inputColumnName: "Picture"));
        Assert.That(() => chain.Fit(data), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Could not find input column 'Picture'"));
    }

    /// <summary>
    /// Soup = 2 is the mean of the fine-tuning runs with seeds 5 and 6 from the same pretrained encoder, tensor by tensor
    /// (each run alone, with one thread, gives the same weights again); without a pretrained encoder it is refused.
    /// </summary>
    [Test]
    public void SoupIsTheMeanOfTheRunsOfConsecutiveSeeds()
    {
        var data = TestData.SampleTrain(300);
        var mlContext = new MLContext(0);
        var pretraining = new Pretrainer(new PretrainOptions { Run = { Epochs = 1, BatchSize = 100, Seed = 1, Threads = 1, Device = "cpu" }, Encoder = Small }, mlContext).Fit(data);
        FineTuningTrainer.Options Options(int seed, int soup) => new()
        {
            Pretrained = PretrainedEncoder.From(pretraining), Soup = soup, Run = { Epochs = 2, BatchSize = 100, Seed = seed, Threads = 1, Device = "cpu" },
        };

        using var soup = new FineTuningTrainer(mlContext, Options(5, 2)).Fit(data, data.LabelNames!);
        using var first = new FineTuningTrainer(mlContext, Options(5, 1)).Fit(data, data.LabelNames!);
        using var second = new FineTuningTrainer(mlContext, Options(6, 1)).Fit(data, data.LabelNames!);

        var (a, b) = (first.Network.state_dict(), second.Network.state_dict());
        var averaged = soup.Network.state_dict().Where(p => p.Value.is_floating_point()).ToList();
        Assert.That(averaged.Select(p => p.Key), Does.Contain("classifier.weight").And.Contain("encoder.blocks.1.bn2.running_var"));
        Assert.That(TestData.Same(a["classifier.weight"], b["classifier.weight"]), Is.False, "the seeds give different runs");
        foreach (var (name, value) in averaged)
        {
            // In C#: a tensor operator with a number makes an implicit Scalar (docs/performance.md, "TorchSharp 0.107 frees …").
            var (mean, x, y) = (value.data<float>().ToArray(), a[name].data<float>().ToArray(), b[name].data<float>().ToArray());
            var difference = mean.Select((m, i) => Math.Abs(m - (x[i] + y[i]) / 2)).Max();
            Assert.That(difference, Is.LessThanOrEqualTo(1e-5f), name);
        }
        Assert.That(soup.Evaluate(mlContext, data).MicroAccuracy, Is.GreaterThan(0.3), "the average is a working network (ten classes)");

        var scratch = Options(5, 2);
        scratch.Pretrained = null;
        scratch.Encoder = Small;
        Assert.That(() => new FineTuningTrainer(mlContext, scratch), Throws.ArgumentException.With.Message.StartsWith("Soup = 2 averages fine-tuning runs"));
    }

    [Test]
    public void ValidationKeepsTheBestEpochAndStopsEarly()
    {
        var data = TestData.SampleTrain(900);
        var (train, validation) = (data.Subset(Enumerable.Range(0, 600).ToArray()), data.Subset(Enumerable.Range(600, 300).ToArray()));
        var mlContext = new MLContext(0);
        using var stage = new FineTuningTrainer(mlContext, new FineTuningTrainer.Options
        {
            Encoder = Small, Run = { Epochs = 30, BatchSize = 100, LearningRate = 3e-2, Seed = 4, Threads = 2, Device = "cpu" }, EarlyStoppingPatience = 2,
        }).Fit(train, train.LabelNames!, validation);

        var accuracies = stage.ValidationAccuracy;
        Assert.That(accuracies, Is.Not.Empty);
        var best = accuracies.MaxBy(a => a.Accuracy);
        Assert.That(stage.BestEpoch, Is.EqualTo(accuracies.First(a => a.Accuracy == best.Accuracy).Epoch));
        Assert.That(accuracies.Count < 30 || stage.BestEpoch >= 28, Is.True, "training stops two epochs after the best one");
        Assert.That(accuracies[^1].Epoch - stage.BestEpoch, Is.LessThanOrEqualTo(2));
        Assert.That(stage.Training.History.Epochs, Has.Count.EqualTo(accuracies.Count));
    }

    [Test]
    public void DistillationTrainsAStudentOnTheUnlabelledImagesToo()
    {
        var (partlyLabelled, test) = PartlyLabelled();
        var mlContext = new MLContext(0);
        var options = new FineTuningTrainer.Options { Encoder = Small, Run = { Epochs = 20, BatchSize = 50, Seed = 5, Threads = 2, Device = "cpu" }};

        Assert.That(() => new FineTuningTrainer(mlContext, options).Fit(partlyLabelled, partlyLabelled.LabelNames!),
            Throws.ArgumentException.With.Message.StartsWith("Row 100 of label column 'Label' has no class (a missing key); every row needs one, unless FixMatch or distillation"));
        using var teacher = new FineTuningTrainer(mlContext, options).Fit(partlyLabelled.Subset(Enumerable.Range(0, 100).ToArray()), partlyLabelled.LabelNames!);
        options.DistillationEpochs = 5;
        using var student = new FineTuningTrainer(mlContext, options).Fit(partlyLabelled, partlyLabelled.LabelNames!);

        Assert.That(student.Training.Steps, Is.EqualTo(5 * 1000 / 50), "the student's epochs run over all 1,000 images");
        Assert.That(student.Training.Info.InitializedFrom, Is.EqualTo("the supervised run"), "starting from the fine-tuned encoder");
        var (teacherAccuracy, studentAccuracy) = (teacher.Evaluate(mlContext, test).MicroAccuracy, student.Evaluate(mlContext, test).MicroAccuracy);
        Assert.That(studentAccuracy, Is.GreaterThan(teacherAccuracy), $"student {studentAccuracy:P1}, teacher {teacherAccuracy:P1}");
    }

    [Test]
    public void FixMatchTrainsOnTheUnlabelledRowsWithTheLabelledOnesRepeated()
    {
        // 100 labelled images and 900 without labels: at 3 unlabelled per labelled one the labelled rows appear 3 times,
        // so an epoch is 1,200 rows, 24 batches of 50.
        var (partlyLabelled, test) = PartlyLabelled();
        var mlContext = new MLContext(0);
        var options = new FineTuningTrainer.Options { Encoder = Small, Run = { Epochs = 1, BatchSize = 50, Seed = 5, Threads = 2, Device = "cpu" }, FixMatch = true };

        using var stage = new FineTuningTrainer(mlContext, options).Fit(partlyLabelled, partlyLabelled.LabelNames!);

        Assert.That(stage.Training.Steps, Is.EqualTo(24));
        var method = (MLNet.Contrastive.Methods.SupervisedOptions)stage.Training.Options.Method;
        Assert.That(method.LabelSmoothing, Is.Zero, "smoothing would cap the confidence below the threshold");
        Assert.That((method.ConfidenceThreshold, method.UnlabelledWeight), Is.EqualTo((0.95, 1.0)));
        Assert.That(stage.Evaluate(mlContext, test).MicroAccuracy, Is.InRange(0.0, 1.0));
        options.UnlabelledRatio = 0;
        Assert.That(() => new FineTuningTrainer(mlContext, options), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("UnlabelledRatio must be at least 1"));
        options.UnlabelledRatio = 3;
        options.Network.ConfidenceThreshold = double.NaN;
        Assert.That(() => new FineTuningTrainer(mlContext, options), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("ConfidenceThreshold must be a finite number in [0, 1]"));
        options.Network.ConfidenceThreshold = 0.95;
        options.Network.UnlabelledWeight = double.PositiveInfinity;
        Assert.That(() => new FineTuningTrainer(mlContext, options), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("UnlabelledWeight must be a finite number"));
        options.Network.UnlabelledWeight = 1;
        options.Network.FrozenEncoderFraction = 1.5;
        Assert.That(() => new FineTuningTrainer(mlContext, options), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("FrozenEncoderFraction must be a finite number in [0, 1]"));
    }

    /// <summary>
    /// Without <see cref="FineTuningTrainer.Options.Epochs"/> a run takes 20 epochs, or 500 steps when its rows are few:
    /// 600 labelled images at batch 128 are 4 steps an epoch (125 epochs), 60 at batch 60 one step (500 epochs).
    /// </summary>
    [Test]
    public void DefaultEpochsRunAtLeastFiveHundredStepsWithFewLabelledImages()
    {
        var options = new FineTuningTrainer.Options();
        Assert.That(options.EpochsFor(600), Is.EqualTo(125));
        Assert.That(options.EpochsFor(60), Is.EqualTo(500));
        Assert.That(options.EpochsFor(6_000), Is.EqualTo(20), "46 steps an epoch: 20 epochs are 920 steps");
        options.FixMatch = true;
        Assert.That(options.EpochsFor(600, 59_400), Is.EqualTo(20), "600 labelled images 33 times and the 59,400 others: 618 steps an epoch");
        Assert.That(options.EpochsFor(10, 20), Is.EqualTo(500), "20 unlabelled and the 10 labelled ones once: 30 rows, one step");
        options.Run.Epochs = 7;
        Assert.That(options.EpochsFor(60), Is.EqualTo(7));
        options.Run.Epochs = 0;
        Assert.That(() => new FineTuningTrainer(new MLContext(0), options),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Epochs must be positive, or null for the default"));

        // The trainer runs that default: 8 labelled images at batch 8 are one step an epoch.
        var eight = TestData.SampleTrain(8);
        using var stage = new FineTuningTrainer(new MLContext(0), new FineTuningTrainer.Options { Encoder = Small, Run = { BatchSize = 8, Seed = 5, Threads = 2, Device = "cpu" }})
            .Fit(eight, eight.LabelNames!);
        Assert.That((stage.Training.Steps, stage.Training.Epochs), Is.EqualTo((500, 500)));
    }

    /// <summary>1,000 training images of which the first 100 keep their labels and 900 have none (−1), and 500 test images.</summary>
    private static (MLNet.Contrastive.Data.ImageStore Train, MLNet.Contrastive.Data.ImageStore Test) PartlyLabelled()
    {
        var data = TestData.SampleTrain(1500);
        var train = data.Subset(Enumerable.Range(0, 1000).ToArray());
        return (train.WithLabels(train.Labels!.Select((l, i) => i < 100 ? l : -1).ToArray(), train.LabelNames), data.Subset(Enumerable.Range(1000, 500).ToArray()));
    }

    private static float[][] Scores(IDataView scored) => scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
}
