using System.CommandLine;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;
using Spectre.Console;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>
/// <c>finetune</c>: fine-tune a pretrained encoder (or train one from scratch) with a classifier on labelled images,
/// print test metrics, and write model.zip (image paths in, PredictedLabel out) with the fine-tuned network.onnx and encoder.onnx.
/// </summary>
internal static class FineTuneCommand
{
    public static Command Create()
    {
        // Defaults come from the library's options, where they are declared.
        var defaults = new FineTuningTrainer.Options();
        var model = new Option<string?>("--model") { Description = "The encoder to start from: the folder pretrain wrote, its checkpoint.bin, a PyTorch state dict (.pt, .pth, .safetensors; see --normalization) or imagenet-resnet18. Without it the encoder trains from scratch." };
        var normalization = CommonOptions.Normalization();
        var train = new Option<string>("--train") { Description = "Labelled training images: class folders, or IDX images with --train-labels.", Required = true };
        var trainLabels = new Option<string?>("--train-labels") { Description = "IDX labels for IDX --train images." };
        var test = new Option<string>("--test") { Description = "Labelled test images: class folders, or IDX images with --test-labels.", Required = true };
        var testLabels = new Option<string?>("--test-labels") { Description = "IDX labels for IDX --test images." };
        var validationImages = new Option<string?>("--validation") { Description = "Labelled validation images (class folders, or IDX with --validation-labels): the best epoch on them is kept, and training stops after --patience epochs without a better one." };
        var validationLabels = new Option<string?>("--validation-labels") { Description = "IDX labels for IDX --validation images." };
        var patience = new Option<int?>("--patience") { Description = $"With --validation: epochs without a better validation accuracy before training stops (default {defaults.EarlyStoppingPatience})." };
        var fraction = new Option<double>("--label-fraction") { Description = "Fraction of training labels used (stratified, seeded), e.g. 0.01, 0.1, 1.", DefaultValueFactory = _ => 1.0 };
        var epochs = new Option<int?>("--epochs") { Description = "Epochs over the labelled images (default 20, or as many as 500 steps take with few labelled images, unless --minutes is given)." };
        var minutes = new Option<double?>("--minutes") { Description = "Wall-clock budget in minutes instead of epochs." };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per step.", DefaultValueFactory = _ => defaults.Run.BatchSize };
        var learningRate = new Option<double>("--lr") { Description = "Peak learning rate of the classifier (AdamW).", DefaultValueFactory = _ => defaults.Run.LearningRate!.Value };
        var encoderFactor = new Option<double>("--encoder-lr-factor") { Description = "The pretrained encoder's learning rate relative to --lr.", DefaultValueFactory = _ => defaults.Network.EncoderLearningRateFactor };
        var frozen = new Option<double>("--frozen-fraction") { Description = "Fraction of training with the pretrained encoder frozen (classifier only).", DefaultValueFactory = _ => defaults.Network.FrozenEncoderFraction };
        var distillEpochs = new Option<int>("--distill-epochs") { Description = "Then distil the fine-tuned network into a student over all training images, the ones outside --label-fraction unlabelled (SimCLRv2): epochs.", DefaultValueFactory = _ => 0 };
        var distillMinutes = new Option<double?>("--distill-minutes") { Description = "Distillation's budget in minutes instead of --distill-epochs." };
        var soup = new Option<int>("--soup") { Description = "Fine-tune this many times (seeds --seed, --seed + 1, …; each the whole budget) from the same --model and average their weights into one network (a model soup).", DefaultValueFactory = _ => defaults.Soup };
        var strongViews = new Option<bool>("--strong-views") { Description = "Train (and distil) on the self-supervised views (wider crops, colour jitter, noise; blur above 64 px) instead of crop and flip." };
        var smoothing = new Option<double?>("--label-smoothing") { Description = "Label smoothing of the cross-entropy (default 0.1; 0 with --fixmatch)." };
        var fixMatch = new Option<bool>("--fixmatch") { Description = "Semi-supervised fine-tuning (FixMatch): the training images outside --label-fraction train too, unlabelled, on their confident predictions." };
        var threshold = new Option<double?>("--confidence-threshold") { Description = $"FixMatch's confidence threshold for a pseudo-label (default {defaults.Network.ConfidenceThreshold.ToString(CultureInfo.InvariantCulture)})." };
        var imageSize = new Option<int>("--image-size") { Description = "Square image size when training from scratch (a pretrained run's own size otherwise).", DefaultValueFactory = _ => 28 };
        var channels = new Option<int>("--channels") { Description = "1 or 3 when training from scratch (a pretrained run's own channels otherwise).", DefaultValueFactory = _ => 1 };
        var encoder = CommonOptions.Encoder("When training from scratch (a pretrained run's own encoder otherwise)");
        var seed = CommonOptions.Seed("the label sample, initialisation, shuffling and augmentation");
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var weightDecay = CommonOptions.WeightDecay(defaults.Run);
        var output = new Option<string>("--out") { Description = "Output folder: model.zip (image paths in, PredictedLabel out), network.onnx (class logits) and encoder.onnx (the fine-tuned encoder).", Required = true };
        var command = new Command("finetune", "Fine-tune a pretrained encoder with a classifier on labelled images (or train it from scratch).")
        {
            model, normalization, train, trainLabels, test, testLabels, validationImages, validationLabels, patience, fraction, epochs, minutes, batchSize, learningRate, encoderFactor, frozen, soup, distillEpochs,
            distillMinutes, strongViews, smoothing, fixMatch, threshold, imageSize, channels, encoder, weightDecay, seed, threads, device, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            if (parse.GetValue(epochs) is not null && parse.GetValue(minutes) is not null)
                throw new ArgumentException("Give either --epochs or --minutes, not both.");
            if (parse.GetValue(distillEpochs) > 0 && parse.GetValue(distillMinutes) is not null)
                throw new ArgumentException("Give either --distill-epochs or --distill-minutes, not both.");
            if (parse.GetValue(threshold) is not null && !parse.GetValue(fixMatch))
                throw new ArgumentException("--confidence-threshold is FixMatch's setting; give --fixmatch too.");
            if (parse.GetValue(patience) is { } epochsWithout && (epochsWithout <= 0 || parse.GetValue(validationImages) is null))
                throw new ArgumentException(epochsWithout <= 0 ? "--patience must be a positive number of epochs." : "--patience is early stopping's setting; give --validation too.");
            if (parse.GetValue(soup) < 1)
                throw new ArgumentOutOfRangeException("--soup", parse.GetValue(soup), "--soup must be at least 1 (one fine-tuning run).");
            if (parse.GetValue(soup) > 1 && parse.GetValue(model) is null)
                throw new ArgumentException("--soup averages fine-tuning runs that start from the same --model; without --model each run starts from its own random weights, which cannot be averaged.");
            var labelFraction = parse.GetValue(fraction);
            if (labelFraction is <= 0 or > 1 || double.IsNaN(labelFraction))
                throw new ArgumentOutOfRangeException("--label-fraction", labelFraction, "--label-fraction must be in (0, 1].");
            var pretrained = CommonOptions.LoadInit(parse.GetValue(model), parse.GetValue(normalization));
            if (pretrained is not null && parse.GetValue(encoder) is not null)
                throw new ArgumentException("--encoder sets the size of an encoder trained from scratch; with --model the run's own encoder is fine-tuned.");
            var shape = pretrained?.ImageShape;
            var load = new ImageLoadOptions
            {
                Height = shape?.Height ?? parse.GetValue(imageSize), Width = shape?.Width ?? parse.GetValue(imageSize),
                Channels = shape?.Channels ?? parse.GetValue(channels),
            };
            var trainStore = LabelledImages.Require(ImageStore.Load(parse.GetValue(train)!, parse.GetValue(trainLabels), load), "--train");
            var testStore = LabelledImages.InTrainingClasses(LabelledImages.Require(ImageStore.Load(parse.GetValue(test)!, parse.GetValue(testLabels), load), "--test"), trainStore);
            var validationStore = parse.GetValue(validationImages) is { } validationPath
                ? LabelledImages.InTrainingClasses(LabelledImages.Require(ImageStore.Load(validationPath, parse.GetValue(validationLabels), load), "--validation"), trainStore, "--validation")
                : parse.GetValue(validationLabels) is null ? null : throw new ArgumentException("--validation-labels labels the --validation images; give --validation too.");
            var seedValue = parse.GetValue(seed);
            var texts = trainStore.Labels!.Select(l => l.ToString(CultureInfo.InvariantCulture)).ToList();
            var sample = LinearEvaluation.StratifiedSample(texts, labelFraction, seedValue);

            var outDir = CommandRunner.OutputFolder(parse.GetValue(output)!);
            var mlContext = new MLContext(seedValue);
            var options = new FineTuningTrainer.Options
            {
                InputColumnName = RunFolder.ImagePathColumn, Pretrained = pretrained,
                Run =
                {
                    Epochs = parse.GetValue(epochs), Minutes = parse.GetValue(minutes), BatchSize = parse.GetValue(batchSize),
                    LearningRate = parse.GetValue(learningRate), WeightDecay = parse.GetValue(weightDecay), Seed = seedValue,
                    Threads = parse.GetValue(threads), Device = parse.GetValue(device)!,
                },
                Soup = parse.GetValue(soup), DistillationEpochs = parse.GetValue(distillEpochs),
                DistillationMinutes = parse.GetValue(distillMinutes), FixMatch = parse.GetValue(fixMatch), Channels = load.Channels,
                Network =
                {
                    EncoderLearningRateFactor = parse.GetValue(encoderFactor), FrozenEncoderFraction = parse.GetValue(frozen),
                    LabelSmoothing = parse.GetValue(smoothing), StrongViews = parse.GetValue(strongViews),
                },
                Encoder = parse.GetValue(encoder) is { } preset ? EncoderOptions.For(load.Channels, load.Height, preset) : null,
                ImageHeight = load.Height, ImageWidth = load.Width,
                OnnxPath = new RunFolder(outDir).Network,
            };
            if (parse.GetValue(threshold) is { } tau) options.Network.ConfidenceThreshold = tau;
            if (parse.GetValue(patience) is { } epochsWithoutBetter) options.EarlyStoppingPatience = epochsWithoutBetter;
            var title = $"{(pretrained is null ? "Training a new encoder from scratch" : $"Fine-tuning {pretrained.Source}")} on {sample.Count:N0} labelled images " +
                        $"({LabelEfficiency.Percent((double)sample.Count / trainStore.Count)} of {trainStore.Count:N0}, {trainStore.LabelNames!.Count} classes" +
                        (options.FixMatch ? $"; FixMatch on the other {trainStore.Count - sample.Count:N0}), " : "), ") +
                        (options.Run.Minutes is { } m ? $"{m:0.##} min" : $"{options.EpochsFor(sample.Count, options.UsesUnlabelled ? trainStore.Count - sample.Count : 0)} epochs") +
                        (options.Soup > 1 ? $", {options.Soup} runs averaged" : "");
            using var stage = ConsoleProgress.Run(title, progress =>
            {
                options.Progress = progress;
                // FixMatch and distillation read every training image, those outside the sample unlabelled.
                var images = options.UsesUnlabelled ? trainStore.KeepLabelsOf(sample) : trainStore.Subset(sample);
                return new FineTuningTrainer(mlContext, options).Fit(images, trainStore.LabelNames!, validationStore);
            });
            var metrics = stage.Evaluate(mlContext, testStore);
            var steps = stage.Training.Steps;
            // With --soup the stage's figures are the first run's.
            Console.WriteLine($"Trained {steps} steps ({stage.Training.Epochs} full epochs){(options.Soup > 1 ? $" in the first of {options.Soup} runs, whose weights were averaged," : "")} at " +
                              $"{stage.Training.ViewsPerSecond:F0} views/s, peak memory {CommandRunner.PeakMemory()}.");
            if (stage.BestEpoch is { } bestEpoch)
                Console.WriteLine($"Validation ({validationStore!.Count:N0} images): best epoch {bestEpoch} of {stage.ValidationAccuracy.Count} measured, " +
                                  $"accuracy {stage.ValidationAccuracy.First(a => a.Epoch == bestEpoch).Accuracy:P2}; its weights are the model's.");
            Console.WriteLine($"Test ({testStore.Count:N0} images): accuracy {metrics.MicroAccuracy:P2}, macro accuracy {metrics.MacroAccuracy:P2}, log-loss {metrics.LogLoss:F4}.");
            AnsiConsole.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

            // Like ML.NET's multiclass pipelines: PredictedLabel back to the class names; no label column needed to score.
            var paths = SavedModel.PathView(mlContext, [], RunFolder.ImagePathColumn);
            var names = mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(stage.Transform(paths));
            var modelZip = new RunFolder(outDir).Model;
            mlContext.Model.Save(new TransformerChain<ITransformer>([.. stage.Chain, names]), paths.Schema, modelZip);
            // The fine-tuned encoder on its own, for embed and other ONNX Runtime clients.
            EncoderOnnxExporter.Export(stage.Encoder, new RunFolder(outDir).Encoder, new EncoderOnnxOptions { Height = load.Height, Width = load.Width });
            stage.Training.History.Save(outDir);
            Console.WriteLine($"Wrote {modelZip} (image paths in '{RunFolder.ImagePathColumn}', PredictedLabel and Score out), " +
                              $"{RunFolder.NetworkFile} (pixels → class logits), {RunFolder.EncoderFile} (the fine-tuned encoder), {RunFolder.HistoryFile} and {RunFolder.HistoryCsvFile} to {outDir}.");
            return 0;
        }));
        return command;
    }
}
