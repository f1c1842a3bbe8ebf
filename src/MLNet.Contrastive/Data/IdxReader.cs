using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.ML.Data;

namespace MLNet.Contrastive.Data;

/// <summary>
/// Reads IDX files (the MNIST format), raw or gzip-compressed: images as unsigned bytes of shape
/// [N, H, W] (grayscale) or [N, H, W, C] with C = 1 or 3, labels as unsigned bytes of shape [N].
/// </summary>
public static class IdxReader
{
    private const byte UnsignedByte = 0x08;

    /// <summary>An IDX images file (and labels file): the files a cache depends on, and how to read them.</summary>
    internal static ImageSource Source(string imagesPath, string? labelsPath) =>
        new(imagesPath, labelsPath is null ? [imagesPath] : [imagesPath, labelsPath],
            () => Plan(ReadFile(imagesPath), imagesPath, labelsPath is null ? null : ReadFile(labelsPath), labelsPath));

    /// <summary>Reads IDX images (and labels) from streams, raw or gzip; the names are used in messages and sources.</summary>
    public static ImageStore Read(Stream images, string imagesName, Stream? labels, string? labelsName, ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        options.Validate();
        return ImageDecoding.Decode(Plan(ReadAll(images), imagesName, labels is null ? null : ReadAll(labels), labelsName), options);
    }

    private static ImagePlan Plan(byte[] imageFile, string imagesPath, byte[]? labelFile, string? labelsPath)
    {
        var (dims, data, offset) = Parse(imageFile, imagesPath);
        if (dims.Length is not (3 or 4))
            throw new ImageDataException(imagesPath, $"an IDX image file has 3 dimensions (N, H, W) or 4 (N, H, W, C); this header has {dims.Length}.");
        int count = dims[0], height = dims[1], width = dims[2], channels = dims.Length == 4 ? dims[3] : 1;
        if (channels is not (1 or 3))
            throw new ImageDataException(imagesPath, $"IDX images must have 1 or 3 channels; the header says {channels}.");
        if (count == 0) throw new ImageDataException(imagesPath, "the IDX file holds no images (empty dataset).");
        if (height == 0 || width == 0) throw new ImageDataException(imagesPath, $"the IDX header declares an empty image size {height}×{width}.");

        int[]? labels = null;
        List<string>? labelNames = null;
        if (labelFile is not null)
        {
            labelsPath ??= "labels";
            var raw = ParseLabels(labelFile, labelsPath);
            if (raw.Length != count)
                throw new ImageDataException(labelsPath, $"the labels file holds {raw.Length:N0} labels but {Path.GetFileName(imagesPath)} holds {count:N0} images.");
            var classes = raw.Distinct().Order().ToArray();
            labelNames = classes.Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
            var indexOf = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
            labels = raw.Select(c => indexOf[c]).ToArray();
        }

        var imageBytes = height * width * channels;
        MLImage Decode(int n)
        {
            var image = data.AsSpan(offset + n * imageBytes, imageBytes);
            var bgra = new byte[height * width * 4];
            for (var p = 0; p < height * width; p++)
            {
                byte r, g, b;
                if (channels == 1) r = g = b = image[p];
                else (r, g, b) = (image[p * 3], image[p * 3 + 1], image[p * 3 + 2]);
                bgra[p * 4] = b; bgra[p * 4 + 1] = g; bgra[p * 4 + 2] = r; bgra[p * 4 + 3] = 255;
            }
            return MLImage.CreateFromPixels(width, height, MLPixelFormat.Bgra32, bgra);
        }

        // IDX images are never skipped: every index is kept.
        var name = Path.GetFileName(imagesPath);
        return new ImagePlan(count, Decode, _ => new NumberedSources(name, count), _ => (labels, labelNames), imagesPath);
    }

    /// <summary>Reads an IDX labels file (unsigned bytes, one dimension).</summary>
    public static byte[] ReadLabels(string path) => ParseLabels(ReadFile(path), path);

    private static byte[] ParseLabels(byte[] file, string path)
    {
        var (dims, data, offset) = Parse(file, path);
        if (dims.Length != 1)
            throw new ImageDataException(path, $"an IDX labels file has 1 dimension; this header has {dims.Length} (is it an images file?).");
        return data.AsSpan(offset, dims[0]).ToArray();
    }

    private static byte[] ReadFile(string path)
    {
        if (!File.Exists(path)) throw new ImageDataException(path, "file not found.");
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageDataException(path, $"cannot be read ({e.Message}).", e);
        }
    }

    /// <summary>An IDX images file's dimensions from its header alone (N, H, W, and C, 1 when absent): no data is read.</summary>
    internal static (int Count, int Height, int Width, int Channels) Shape(string path)
    {
        if (!File.Exists(path)) throw new ImageDataException(path, "file not found.");
        using var file = File.OpenRead(path);
        var gzipped = file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using Stream stream = gzipped ? new GZipStream(file, CompressionMode.Decompress) : file;
        var header = new byte[4 + 4 * 4];
        int read;
        try { read = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false); }
        catch (InvalidDataException e) { throw new ImageDataException(path, $"the gzip data is corrupt or truncated ({e.Message}).", e); }
        var rank = read >= 4 ? header[3] : 0;
        var (dims, _, _) = ParseHeader(header.AsSpan(0, Math.Min(read, 4 + 4 * rank)).ToArray(), path);
        if (dims.Length is not (3 or 4))
            throw new ImageDataException(path, $"an IDX image file has 3 dimensions (N, H, W) or 4 (N, H, W, C); this header has {dims.Length}.");
        return (dims[0], dims[1], dims[2], dims.Length == 4 ? dims[3] : 1);
    }

    private static byte[] ReadAll(Stream stream)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static (int[] Dims, byte[] Data, int Offset) Parse(byte[] data, string path)
    {
        if (data.Length >= 2 && data[0] == 0x1f && data[1] == 0x8b) return Inflate(data, path);
        var (dims, offset, expected) = ParseHeader(data, path);
        var actual = data.Length - offset;
        if (actual != expected) throw SizeMismatch(path, dims, expected, actual.ToString("N0"), actual < expected);
        return (dims, data, offset);
    }

    /// <summary>
    /// Inflates gzip data into exactly the size its IDX header declares: a small file that would inflate to gigabytes
    /// of extra data costs no more memory than the header allows, and is refused.
    /// </summary>
    private static (int[] Dims, byte[] Data, int Offset) Inflate(byte[] compressed, string path)
    {
        try
        {
            using var gzip = new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress);
            var head = new byte[4];
            var read = gzip.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            var header = new byte[read < 4 ? read : 4 + 4 * head[3]];
            head.AsSpan(0, Math.Min(read, header.Length)).CopyTo(header);
            if (read == 4) read += gzip.ReadAtLeast(header.AsSpan(4), header.Length - 4, throwOnEndOfStream: false);
            var (dims, offset, expected) = ParseHeader(header.AsSpan(0, read).ToArray(), path);
            var data = new byte[offset + expected];
            header.CopyTo(data, 0);
            var actual = gzip.ReadAtLeast(data.AsSpan(offset), (int)expected, throwOnEndOfStream: false);
            if (actual < expected) throw SizeMismatch(path, dims, expected, actual.ToString("N0"), truncated: true);
            if (gzip.ReadByte() >= 0) throw SizeMismatch(path, dims, expected, $"more than {expected:N0}", truncated: false);
            return (dims, data, offset);
        }
        catch (InvalidDataException e)
        {
            throw new ImageDataException(path, $"the gzip data is corrupt or truncated ({e.Message}).", e);
        }
    }

    /// <summary>Checks the magic number, data type and dimensions; returns them, the data's offset and its declared size in bytes.</summary>
    private static (int[] Dims, int Offset, long Expected) ParseHeader(byte[] data, string path)
    {
        if (data.Length == 0) throw new ImageDataException(path, "the file is empty (0 bytes).");
        if (data.Length < 4 || data[0] != 0 || data[1] != 0)
            throw new ImageDataException(path, $"wrong magic number 0x{Magic(data)}: not an IDX file (expected 0x0000080N).");
        if (data[2] != UnsignedByte)
            throw new ImageDataException(path, $"IDX data type 0x{data[2]:x2} is not supported; only unsigned bytes (0x08) are.");
        var rank = data[3];
        var offset = 4 + 4 * rank;
        if (rank == 0 || data.Length < offset)
            throw new ImageDataException(path, $"the IDX header is truncated or declares {rank} dimensions.");
        var dims = new int[rank];
        long expected = 1;
        for (var d = 0; d < rank; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4 + 4 * d));
            if (dims[d] < 0) throw new ImageDataException(path, $"the IDX header declares a negative size {dims[d]}.");
            // Past one array's size the product could also wrap around and match a tiny file.
            if (dims[d] > 0 && expected > (Array.MaxLength - offset) / dims[d])
                throw new ImageDataException(path, $"the IDX header declares {string.Join("×", dims.Take(d + 1))}… bytes of data, more than one file can hold.");
            expected *= dims[d];
        }
        return (dims, offset, expected);
    }

    private static ImageDataException SizeMismatch(string path, int[] dims, long expected, string actual, bool truncated) =>
        new(path, $"the header declares {string.Join("×", dims)} = {expected:N0} bytes of data but the file holds {actual} " +
                  (truncated ? "(truncated)." : "(extra bytes after the data)."));

    private static string Magic(byte[] data) => Convert.ToHexString(data.AsSpan(0, Math.Min(4, data.Length))).ToLowerInvariant();
}
