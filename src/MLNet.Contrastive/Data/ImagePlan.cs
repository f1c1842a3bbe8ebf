namespace MLNet.Contrastive.Data;

/// <summary>Images to read: a name for messages, the files their decoded form depends on, and how to plan the decoding (parsing headers happens then).</summary>
/// <param name="Name">The folder or file the images come from.</param>
/// <param name="Files">Every file read, in order (a cache is valid while each keeps its size and time).</param>
/// <param name="Open">Reads headers and lists the images.</param>
internal sealed record ImageSource(string Name, IReadOnlyList<string> Files, Func<ImagePlan> Open);

/// <summary>How to decode <paramref name="Count"/> images one by one, and what the kept ones' sources and labels are.</summary>
/// <param name="Count">Images to decode.</param>
/// <param name="Decode">The i-th image (thread-safe; throws <see cref="ImageDataException"/> for an unreadable one).</param>
/// <param name="Sources">The sources of the kept images, given their indices.</param>
/// <param name="Labels">The kept images' class indices and the class names, given their indices.</param>
/// <param name="FirstItem">Named when no image at all could be read.</param>
internal sealed record ImagePlan(int Count, Func<int, Microsoft.ML.Data.MLImage> Decode, Func<IReadOnlyList<int>, IReadOnlyList<string>> Sources,
    Func<IReadOnlyList<int>, (int[]? Labels, IReadOnlyList<string>? Names)> Labels, string FirstItem)
{
    /// <summary>Image files (with their class names when labelled), decoded by <see cref="ImageDecoder"/>; labels index the kept images' classes.</summary>
    public static ImagePlan ForFiles(IReadOnlyList<string> paths, IReadOnlyList<string>? labelTexts, ImageLoadOptions options) =>
        new(paths.Count, i => ImageDecoder.Decode(paths[i], options.MaxPixels), kept => kept.Select(i => paths[i]).ToArray(),
            kept => ImageDecoding.IndexLabels(labelTexts is null ? null : kept.Select(i => labelTexts[i]).ToList()), paths[0]);
}

/// <summary>What decoding yields besides the pixels.</summary>
internal sealed record DecodedImages(int Count, IReadOnlyList<string> Sources, int[]? Labels, IReadOnlyList<string>? LabelNames, IReadOnlyList<string> Skipped);
