namespace MLNet.Contrastive.Data;

/// <summary>
/// Reads <c>root/&lt;label&gt;/**/*.png|jpg|jpeg|bmp</c> (label = sub-folder name) or a flat folder of unlabeled images.
/// </summary>
internal static class ImageFolderReader
{
    /// <summary>The folder's images: the files a cache depends on, and how to decode them.</summary>
    public static ImageSource Source(string root, ImageLoadOptions options)
    {
        var (files, labels) = List(root);
        return new ImageSource(root, files, () => ImagePlan.ForFiles(files, labels, options));
    }

    /// <summary>The image files in a stable order, and each one's class (its class folder's name) when labelled.</summary>
    private static (List<string> Files, List<string>? Labels) List(string root)
    {
        if (!Directory.Exists(root)) throw new ImageDataException(root, "folder not found.");
        // Each directory is read once: symbolic links that loop, or lead into another class, add no images twice.
        var folders = Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal).ToList();
        var visited = folders.Prepend(root).Select(d => ImageDecoder.RealPath(new DirectoryInfo(d), null)).ToHashSet(StringComparer.Ordinal);
        var classFolders = folders.Select(d => (Folder: d, Files: ImageDecoder.ImageFilesUnder(d, visited))).Where(c => c.Files.Count > 0).ToList();
        var rootImages = Directory.EnumerateFiles(root).Where(ImageDecoder.IsImageFile).Order(StringComparer.Ordinal).ToList();
        if (classFolders.Count == 0)
        {
            if (rootImages.Count == 0)
                throw new ImageDataException(root, "the folder holds no .png, .jpg, .jpeg or .bmp images (empty dataset).");
            return (rootImages, null);
        }
        if (rootImages.Count > 0)
            throw new ImageDataException(root,
                $"it has both class sub-folders and {rootImages.Count} images directly inside (e.g. {Path.GetFileName(rootImages[0])}); " +
                "put every image in its class folder, or use a flat folder for unlabeled images.");

        var files = new List<string>();
        var labels = new List<string>();
        foreach (var (folder, classFiles) in classFolders)
            foreach (var file in classFiles)
            {
                files.Add(file);
                labels.Add(Path.GetFileName(folder));
            }
        return (files, labels);
    }
}
