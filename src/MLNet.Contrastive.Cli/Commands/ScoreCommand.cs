using System.CommandLine;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>score</c>: the predicted label of every image in a folder, with a probe.zip.</summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "probe.zip written by the probe command.", Required = true };
        var data = new Option<string>("--data") { Description = "Folder of images (searched recursively).", Required = true };
        var command = new Command("score", "Print the predicted label of every image in a folder.") { model, data };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var path = parse.GetValue(model)!;
            var mlContext = new MLContext();
            var probe = SavedModel.Load(mlContext, path, out var inputSchema);
            var column = SavedModel.PathColumn(path, inputSchema, probe, "PredictedLabel");
            var images = ImagesUnder(parse.GetValue(data)!);
            var scored = probe.Transform(SavedModel.PathView(mlContext, images, column));
            var predicted = scored.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(p => p.ToString()).ToList();
            for (var i = 0; i < images.Count; i++) Console.WriteLine($"{images[i]}\t{predicted[i]}");
            return 0;
        }));
        return command;
    }

    /// <summary>Image files under a folder, recursively, in a stable order.</summary>
    private static List<string> ImagesUnder(string folder)
    {
        if (!Directory.Exists(folder)) throw new ImageDataException(folder, "folder not found.");
        var files = ImageDecoder.ImageFilesUnder(folder);
        return files.Count > 0 ? files : throw new ImageDataException(folder, "the folder holds no .png, .jpg, .jpeg or .bmp images.");
    }
}
