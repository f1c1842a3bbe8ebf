using System.CommandLine;
using Microsoft.ML;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>
/// <c>zeroshot</c>: classify images with a clip run and class prompts, no labelled training image; writes zeroshot.zip
/// (the ML.NET stage: image paths in, Score and PredictedLabel out) and, given labelled test images, prints the accuracy.
/// </summary>
internal static class ZeroShotCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The folder `pretrain --method clip` wrote (captions), or its checkpoint.bin.", Required = true };
        var classNames = CaptionsCommand.ClassNamesOption();
        classNames.Required = true;
        var prompts = new Option<string[]>("--prompt")
        {
            Description = "Prompt template with {0} for the class name (repeatable: the class embedding is the prompts' mean).",
            DefaultValueFactory = _ => [ZeroShotEstimator.DefaultPromptTemplate],
        };
        var test = new Option<string?>("--test") { Description = "Labelled test images (class folders, or IDX with --test-labels) to measure accuracy on." };
        var testLabels = new Option<string?>("--test-labels") { Description = "IDX labels for IDX --test images." };
        var output = new Option<string?>("--out") { Description = "Where to write the ML.NET stage (default: zeroshot.zip in the run folder)." };
        var command = new Command("zeroshot", "Zero-shot classification with a clip run: each image gets the class whose prompt is nearest.")
        {
            model, classNames, prompts, test, testLabels, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var run = PretrainedClip.Load(parse.GetValue(model)!);
            var classes = CaptionsCommand.Parse(parse.GetValue(classNames)!);
            var templates = parse.GetValue(prompts)!;
            var mlContext = new MLContext(0);
            var paths = SavedModel.PathView(mlContext, [], RunFolder.ImagePathColumn);
            using var stage = mlContext.SelfSupervised().ZeroShotClassify(new ZeroShotEstimator.Options
            {
                Model = run, ClassNames = classes, PromptTemplates = templates, InputColumnName = RunFolder.ImagePathColumn,
            }).Fit(paths);
            var zip = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(run.Source))!, RunFolder.ZeroShotFile);
            mlContext.Model.Save(stage, paths.Schema, zip);
            Console.WriteLine($"Wrote {zip}: {classes.Count} classes, prompts {string.Join(" | ", templates.Select(t => $"\"{t}\""))}; image paths in ('{RunFolder.ImagePathColumn}'), Similarity, Score and PredictedLabel out.");

            if (parse.GetValue(test) is { } testPath)
            {
                var (channels, height, width) = run.ImageShape;
                var store = LabelledImages.Require(ImageStore.Load(testPath, parse.GetValue(testLabels), new ImageLoadOptions { Channels = channels, Height = height, Width = width }), "--test");
                if (parse.GetValue(testLabels) is not null) store = CaptionsCommand.Named(store, parse.GetValue(classNames));
                var classIndex = store.LabelNames!.Select(name => classes.ToList().IndexOf(name)).ToArray();
                var truth = store.Labels!.Select(l => classIndex[l]).ToArray();
                if (Array.IndexOf(truth, -1) is var missing and >= 0)
                    throw new ArgumentException($"--test: class '{store.LabelNames![store.Labels![missing]]}' is not one of --class-names.");
                var predicted = stage.PredictClasses(store);
                var correct = predicted.Zip(truth).Count(p => p.First == p.Second);
                Console.WriteLine($"Zero-shot accuracy on {store.Count:N0} test images: {100.0 * correct / store.Count:F1} % (chance {100.0 / classes.Count:F1} %).");
                foreach (var c in Enumerable.Range(0, classes.Count))
                {
                    var of = Enumerable.Range(0, truth.Length).Where(i => truth[i] == c).ToList();
                    if (of.Count > 0) Console.WriteLine($"  {classes[c],-14} recall {100.0 * of.Count(i => predicted[i] == c) / of.Count,5:F1} % of {of.Count}");
                }
            }
            return 0;
        }));
        return command;
    }
}
