using Microsoft.ML.Data;
using SkiaSharp;

namespace MLNet.Contrastive.Data;

/// <summary>
/// Decodes image files into <see cref="MLImage"/>s the way <see cref="MLImage.CreateFromFile"/> does
/// (Skia's codec, then BGRA), but checks the header first and reports what is actually wrong with a bad file.
/// </summary>
public static class ImageDecoder
{
    /// <summary>File extensions read from image folders.</summary>
    public static readonly IReadOnlySet<string> Extensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp" };

    /// <summary>Whether <paramref name="path"/> has one of the <see cref="Extensions"/>.</summary>
    public static bool IsImageFile(string path) => Extensions.Contains(Path.GetExtension(path));

    /// <summary>The image files under <paramref name="folder"/>, recursively, in ordinal path order (a stable order).</summary>
    public static List<string> ImageFilesUnder(string folder) => ImageFilesUnder(folder, new HashSet<string>(StringComparer.Ordinal));

    /// <summary>
    /// The image files under <paramref name="folder"/>, reading each directory below it once by its real path (recorded
    /// in <paramref name="visited"/>): a symbolic link back up the tree, or to a folder already in the set, adds nothing.
    /// </summary>
    internal static List<string> ImageFilesUnder(string folder, ISet<string> visited)
    {
        var files = new List<string>();
        var start = RealPath(new DirectoryInfo(folder), null);
        visited.Add(start);
        var pending = new Stack<(string Path, string Real)>([(folder, start)]);
        while (pending.TryPop(out var directory))
        {
            files.AddRange(Directory.EnumerateFiles(directory.Path).Where(IsImageFile));
            foreach (var sub in new DirectoryInfo(directory.Path).EnumerateDirectories())
                if (RealPath(sub, directory.Real) is var real && visited.Add(real))
                    pending.Push((sub.FullName, real));
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>Where a directory really is: a link's final target, else its name under its parent's real path.</summary>
    internal static string RealPath(DirectoryInfo directory, string? parentReal) =>
        directory.LinkTarget is not null ? directory.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? directory.FullName
        : parentReal is null ? directory.FullName
        : Path.Combine(parentReal, directory.Name);

    /// <summary>Decodes one image file; throws <see cref="ImageDataException"/> naming the file and the problem.</summary>
    public static MLImage Decode(string path, long maxPixels)
    {
        if (!File.Exists(path)) throw new ImageDataException(path, "file not found.");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageDataException(path, $"cannot be read ({e.Message}).", e);
        }
        return Decode(bytes, path, maxPixels);
    }

    /// <summary>Decodes encoded image bytes; <paramref name="name"/> is used in error messages.</summary>
    public static MLImage Decode(byte[] bytes, string name, long maxPixels)
    {
        if (bytes.Length == 0) throw new ImageDataException(name, "the file is empty (0 bytes).");
        // The codec takes ownership of the stream when it is created.
        var stream = new SKMemoryStream(bytes);
        using var codec = SKCodec.Create(stream, out var result);
        if (codec is null)
        {
            stream.Dispose();
            throw new ImageDataException(name, result == SKCodecResult.IncompleteInput
                ? "the image header is truncated."
                : "not a PNG, JPEG or BMP image (its content is not a recognised image format).");
        }

        var info = codec.Info;
        var pixels = (long)info.Width * info.Height;
        if (info.Width <= 0 || info.Height <= 0)
            throw new ImageDataException(name, $"the image header declares an empty image ({info.Width}×{info.Height}).");
        if (pixels > maxPixels)
            throw new ImageDataException(name,
                $"the image header declares {info.Width}×{info.Height} = {pixels:N0} pixels, above the limit of {maxPixels:N0} " +
                "(rejected before decoding; raise MaxPixels / --max-pixels if the image is genuine).");

        // Decode as SKBitmap.Decode does (premultiplied alpha), then convert to BGRA like MLImage.
        if (info.AlphaType == SKAlphaType.Unpremul) info.AlphaType = SKAlphaType.Premul;
        using var bitmap = new SKBitmap(info);
        result = codec.GetPixels(bitmap.Info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
            throw new ImageDataException(name, result == SKCodecResult.IncompleteInput
                ? $"the {codec.EncodedFormat} data is truncated (the file ends before the image does)."
                : $"the {codec.EncodedFormat} data is corrupt ({result}).");

        using var bgra = bitmap.ColorType == SKColorType.Bgra8888 ? null : bitmap.Copy(SKColorType.Bgra8888);
        var source = bgra ?? bitmap;
        if (source is null) throw new ImageDataException(name, $"its pixel format {info.ColorType} cannot be converted to BGRA.");
        return MLImage.CreateFromPixels(source.Width, source.Height, MLPixelFormat.Bgra32, source.GetPixelSpan());
    }
}
