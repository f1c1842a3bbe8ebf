using Microsoft.ML.Data;

namespace MLNet.Contrastive.Data;

/// <summary>
/// Reads <c>root/&lt;label&gt;/**/*.png|jpg|jpeg|bmp</c> (label = sub-folder name) or a flat folder of unlabeled images.
/// </summary>
internal static class ImageFolderReader
{
    public static ImageStore Read(string root, ImageLoadOptions options)
    {
        options.Validate();
        var (files, labelOf, labelNames) = List(root);
        var sources = new List<string>();
        var labels = new List<int>();
        var skipped = new List<string>();

        IEnumerable<MLImage> Decoded()
        {
            foreach (var file in files)
            {
                MLImage image;
                try { image = ImageDecoder.Decode(file, options.MaxPixels); }
                catch (ImageDataException e) when (options.SkipBadImages)
                {
                    skipped.Add(e.Message);
                    continue;
                }
                sources.Add(file);
                if (labelOf is not null) labels.Add(labelOf[file]);
                yield return image;
            }
        }

        var pixels = ImageStore.Preprocess(Decoded(), options);
        if (sources.Count == 0)
            throw new ImageDataException(root, $"none of its {files.Count} images could be read; the first problem: {skipped[0]}");
        return new ImageStore(pixels, options.Channels, options.Height, options.Width,
            labelOf is null ? null : labels.ToArray(), labelNames, sources, skipped);
    }

    private static (List<string> Files, Dictionary<string, int>? LabelOf, List<string>? LabelNames) List(string root)
    {
        if (!Directory.Exists(root)) throw new ImageDataException(root, "folder not found.");
        static bool IsImage(string f) => ImageDecoder.Extensions.Contains(Path.GetExtension(f));
        static List<string> Sorted(IEnumerable<string> items) => items.Order(StringComparer.Ordinal).ToList();

        var classFolders = Sorted(Directory.EnumerateDirectories(root))
            .Where(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).Any(IsImage)).ToList();
        var rootImages = Sorted(Directory.EnumerateFiles(root).Where(IsImage));
        if (classFolders.Count == 0)
        {
            if (rootImages.Count == 0)
                throw new ImageDataException(root, "the folder holds no .png, .jpg, .jpeg or .bmp images (empty dataset).");
            return (rootImages, null, null);
        }
        if (rootImages.Count > 0)
            throw new ImageDataException(root,
                $"it has both class sub-folders and {rootImages.Count} images directly inside (e.g. {Path.GetFileName(rootImages[0])}); " +
                "put every image in its class folder, or use a flat folder for unlabeled images.");

        var files = new List<string>();
        var labelOf = new Dictionary<string, int>();
        var labelNames = new List<string>();
        foreach (var folder in classFolders)
        {
            labelNames.Add(Path.GetFileName(folder));
            foreach (var file in Sorted(Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Where(IsImage)))
            {
                files.Add(file);
                labelOf[file] = labelNames.Count - 1;
            }
        }
        return (files, labelOf, labelNames);
    }
}
