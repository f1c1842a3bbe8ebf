using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>Checks shared by the commands that read labelled training and test images.</summary>
internal static class LabelledImages
{
    /// <summary>The store, or a clear error naming <paramref name="option"/> when its images have no labels.</summary>
    public static ImageStore Require(ImageStore store, string option) =>
        store.Labels is not null ? store
            : throw new ArgumentException($"{option}: the images have no labels; use class sub-folders, or an IDX labels file ({option}-labels).");

    /// <summary>
    /// Test (or validation) labels re-indexed into the training classes (a folder's class indices depend on which folders
    /// exist); <paramref name="option"/> names the images in the error.
    /// </summary>
    public static ImageStore InTrainingClasses(ImageStore test, ImageStore train, string option = "--test")
    {
        var index = train.LabelNames!.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i);
        var labels = test.Labels!.Select(l => index.TryGetValue(test.LabelNames![l], out var i) ? i
            : throw new ArgumentException($"{option}: class '{test.LabelNames![l]}' does not occur in the training images.")).ToArray();
        return test.WithLabels(labels, train.LabelNames);
    }
}
