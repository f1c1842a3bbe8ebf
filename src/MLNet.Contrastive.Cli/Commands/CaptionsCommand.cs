using System.CommandLine;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>captions</c>: captions for labelled images from their class names and computed attributes (brightness, size), for <c>pretrain --method clip</c>.</summary>
internal static class CaptionsCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Labelled images: class folders, or IDX images with --labels.", Required = true };
        var labels = new Option<string?>("--labels") { Description = "IDX labels for IDX images." };
        var classNames = ClassNamesOption();
        var seed = CommonOptions.Seed("the sentence templates' draw");
        var output = new Option<string>("--out") { Description = "The text file to write, one caption per image.", Required = true };
        var command = new Command("captions", "Write a caption per labelled image from its class name, brightness and size (a captioned set for clip).")
        {
            data, labels, classNames, seed, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var store = Named(LabelledImages.Require(ImageStore.Load(parse.GetValue(data)!, parse.GetValue(labels)), "--data"), parse.GetValue(classNames));
            var captions = AttributeCaptions.Create(store, parse.GetValue(seed));
            var path = parse.GetValue(output)!;
            File.WriteAllLines(path, captions);
            Console.WriteLine($"Wrote {captions.Count:N0} captions to {path}, e.g. \"{captions[0]}\", \"{captions[^1]}\".");
            return 0;
        }));
        return command;
    }

    /// <summary>--class-names: names for the label indices 0…K−1 of IDX labels (IDX files carry numbers only).</summary>
    internal static Option<string?> ClassNamesOption() => new("--class-names")
    {
        Description = "Comma-separated class names for IDX label indices 0…K−1, or 'fashion-mnist' (IDX labels are numbers; folders are named by themselves).",
    };

    /// <summary>The store with its numeric IDX labels named by <paramref name="classNames"/> (unchanged when null).</summary>
    internal static ImageStore Named(ImageStore store, string? classNames)
    {
        if (classNames is null) return store;
        var names = Parse(classNames);
        var indexOfLabel = store.LabelNames!.Select(label => int.TryParse(label, out var index) && index >= 0 && index < names.Count ? index
            : throw new ArgumentException($"--class-names: label '{label}' is not an index into the {names.Count} names given.")).ToArray();
        var labels = store.Labels!.Select(l => indexOfLabel[l]).ToArray();
        return store.WithLabels(labels, names);
    }

    /// <summary>The names of a --class-names value.</summary>
    internal static IReadOnlyList<string> Parse(string classNames)
    {
        var names = classNames.Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase) ? SampleData.ClassNames
            : classNames.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Count < 2 || names.Distinct().Count() != names.Count)
            throw new ArgumentException($"--class-names '{classNames}': give at least two distinct, comma-separated names.");
        return names;
    }
}
