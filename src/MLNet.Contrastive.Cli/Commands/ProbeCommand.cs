using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Stages;
using Spectre.Console;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>
/// <c>probe</c>: the linear evaluation protocol on a pretrained encoder; prints accuracy, macro-F1, per-class
/// precision/recall and the confusion matrix, and writes probe.zip (embedding stage + probe, predicting labels).
/// </summary>
internal static class ProbeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The folder pretrain wrote, or its model.zip (encoder.onnx beside it).", Required = true };
        var train = new Option<string>("--train") { Description = "Labelled training images: class folders, or IDX images with --train-labels.", Required = true };
        var trainLabels = new Option<string?>("--train-labels") { Description = "IDX labels for IDX --train images." };
        var test = new Option<string>("--test") { Description = "Labelled test images: class folders, or IDX images with --test-labels.", Required = true };
        var testLabels = new Option<string?>("--test-labels") { Description = "IDX labels for IDX --test images." };
        var fraction = new Option<double>("--label-fraction") { Description = "Fraction of training labels used (stratified, seeded), e.g. 0.01, 0.1, 1.", DefaultValueFactory = _ => 1.0 };
        var seed = CommonOptions.Seed("the label-fraction sample");
        var trainer = new Option<ProbeTrainer>("--trainer") { Description = "Lbfgs or Sdca.", DefaultValueFactory = _ => ProbeTrainer.Lbfgs };
        var output = new Option<string?>("--out") { Description = "Where to write the probe pipeline (default: probe.zip beside model.zip)." };
        var command = new Command("probe", "Train and evaluate a linear probe on a pretrained encoder's embeddings.")
        {
            model, train, trainLabels, test, testLabels, fraction, seed, trainer, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var files = RunFolder.FindModel(parse.GetValue(model)!);
            var mlContext = new MLContext(parse.GetValue(seed));
            using var embedder = new ImageEmbedder(files.EncoderOnnx, new ImageEmbedderOptions { Log = _ => { } });
            var (channels, height, width) = embedder.InputShape;
            var load = new ImageLoadOptions { Channels = channels, Height = height, Width = width };
            var trainStore = LabelledImages.Require(ImageStore.Load(parse.GetValue(train)!, parse.GetValue(trainLabels), load), "--train");
            var testStore = LabelledImages.InTrainingClasses(
                LabelledImages.Require(ImageStore.Load(parse.GetValue(test)!, parse.GetValue(testLabels), load), "--test"), trainStore);
            var embedding = SavedModel.Load(mlContext, files.ModelZip, out var inputSchema);
            var pathColumn = SavedModel.PathColumn(files.ModelZip, inputSchema, embedding, "Embedding");
            // The probe is measured on encoder.onnx and saved around model.zip's encoder: they must be the same one.
            SavedModel.CheckSameEncoder(mlContext, files.ModelZip, embedding, pathColumn, files.EncoderOnnx, embedder, trainStore);
            var trainEmbeddings = embedder.Embed(trainStore);
            var testEmbeddings = embedder.Embed(testStore);

            var result = LinearEvaluation.Evaluate(mlContext, trainEmbeddings, testEmbeddings, parse.GetValue(fraction), parse.GetValue(seed),
                trainStore.LabelNames, new LinearProbeEstimator.Options { Trainer = parse.GetValue(trainer) });
            Print(result, testStore.Count);

            var pipeline = new TransformerChain<ITransformer>(embedding, result.Probe);
            var probeZip = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(files.ModelZip))!, RunFolder.ProbeFile);
            mlContext.Model.Save(pipeline, inputSchema, probeZip);
            Console.WriteLine($"Wrote {probeZip}: embedding stage + linear probe, image paths in, PredictedLabel out.");
            return 0;
        }));
        return command;
    }

    private static void Print(LinearEvaluationResult result, int testCount)
    {
        Console.WriteLine($"Linear probe trained on {result.TrainingRows:N0} labelled images, tested on {testCount:N0}: " +
                          $"accuracy {result.Accuracy:P2}, macro-F1 {result.MacroF1:F4}.");
        var classes = new Table().AddColumns("Class", "Precision", "Recall", "F1", "Support");
        foreach (var c in result.Classes)
            classes.AddRow(Markup.Escape(c.Label), $"{c.Precision:F3}", $"{c.Recall:F3}", $"{c.F1:F3}", $"{c.Support}");
        AnsiConsole.Write(classes);
        var matrix = new Table().AddColumn("true \\ predicted");
        foreach (var label in result.Labels) matrix.AddColumn(new TableColumn(Markup.Escape(label)).RightAligned());
        for (var i = 0; i < result.Labels.Count; i++)
            matrix.AddRow(new[] { Markup.Escape(result.Labels[i]) }.Concat(result.ConfusionMatrix[i].Select(n => n.ToString())).ToArray());
        AnsiConsole.Write(matrix);
    }
}
