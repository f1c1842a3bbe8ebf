using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MLNet.Contrastive.Runtime;

namespace MLNet.Contrastive.Data;

/// <summary>
/// Decoded-image cache files: the resized uint8 pixels [N, C, H, W] from byte 0, then a JSON index (what was decoded
/// from which files, labels, class names, sources, skipped images), then the index's length, a CRC-32 of the index and
/// a closing tag. Written once through a temporary file and a rename; read image by image afterwards. The file's name is a
/// hash of the source files (path, size, time) and the options that shape the pixels, so a changed source or size
/// reads as a different cache and is decoded again.
/// </summary>
internal static class ImageCache
{
    private const int Version = 1;
    private static readonly byte[] Tag = "MLNCIMG1"u8.ToArray();
    private const int TrailerLength = 8 + 4 + 8;

    /// <summary>The store of <paramref name="source"/> from its cache in <paramref name="folder"/>, decoding and writing the cache first when there is none.</summary>
    public static ImageStore Load(string folder, ImageSource source, ImageLoadOptions options)
    {
        var key = Key(source, options);
        var path = Path.Combine(folder, $"images-{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16].ToLowerInvariant()}.cache");
        if (File.Exists(path) && TryOpen(path, key, options) is { } cached)
        {
            cached.ReadFromCache = true;
            return cached;
        }
        Directory.CreateDirectory(folder);
        Write(path, key, source, options);
        return TryOpen(path, key, options) ?? throw new InvalidDataException($"{path}: the cache just written cannot be read back.");
    }

    /// <summary>What the pixels depend on: the format, every source file's full path, size and last write time, and the size options.</summary>
    internal static string Key(ImageSource source, ImageLoadOptions options)
    {
        var key = new StringBuilder();
        key.Append(System.Globalization.CultureInfo.InvariantCulture,
            $"v{Version};{options.Channels}x{options.Height}x{options.Width};max {options.MaxPixels};skip {options.SkipBadImages};{Path.GetFullPath(source.Name)}\n");
        foreach (var file in source.Files)
        {
            var info = new FileInfo(file);
            key.Append(System.Globalization.CultureInfo.InvariantCulture, $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}\n");
        }
        return key.ToString();
    }

    private static void Write(string path, string key, ImageSource source, ImageLoadOptions options)
    {
        var plan = source.Open();
        AtomicFile.Write(path, stream =>
        {
            var decoded = ImageDecoding.Preprocess(plan, options, stream, long.MaxValue);
            var pixelBytes = stream.Position;
            var index = JsonSerializer.SerializeToUtf8Bytes(new CacheIndex
            {
                Key = key, Count = decoded.Count, Channels = options.Channels, Height = options.Height, Width = options.Width, PixelBytes = pixelBytes,
                Labels = decoded.Labels, LabelNames = decoded.LabelNames?.ToList(), Skipped = decoded.Skipped.ToList(),
                SourcePrefix = decoded.Sources is NumberedSources ? Path.GetFileName(plan.FirstItem) : null,
                Sources = decoded.Sources is NumberedSources ? null : decoded.Sources.ToList(),
            });
            stream.Write(index);
            Span<byte> trailer = stackalloc byte[TrailerLength];
            BitConverter.TryWriteBytes(trailer, (long)index.Length);
            BitConverter.TryWriteBytes(trailer[8..], System.IO.Hashing.Crc32.HashToUInt32(index));
            Tag.CopyTo(trailer[12..]);
            stream.Write(trailer);
        });
    }

    /// <summary>The store read from the cache file, or null when the file is not a complete cache of <paramref name="key"/> (it is then rewritten).</summary>
    private static ImageStore? TryOpen(string path, string key, ImageLoadOptions options)
    {
        CacheIndex? index;
        using (var file = File.OpenRead(path))
        {
            if (file.Length < TrailerLength) return null;
            var trailer = new byte[TrailerLength];
            file.Seek(-TrailerLength, SeekOrigin.End);
            file.ReadExactly(trailer);
            var indexLength = BitConverter.ToInt64(trailer, 0);
            if (!trailer.AsSpan(12).SequenceEqual(Tag) || indexLength <= 0 || indexLength > file.Length - TrailerLength) return null;
            var bytes = new byte[indexLength];
            file.Seek(-TrailerLength - indexLength, SeekOrigin.End);
            file.ReadExactly(bytes);
            if (System.IO.Hashing.Crc32.HashToUInt32(bytes) != BitConverter.ToUInt32(trailer, 8)) return null;
            index = JsonSerializer.Deserialize<CacheIndex>(bytes);
            if (index is null || index.Key != key || index.PixelBytes != file.Length - TrailerLength - indexLength
                || index.PixelBytes != (long)index.Count * options.Channels * options.Height * options.Width) return null;
        }
        IReadOnlyList<string> sources = index.Sources is { } list ? list : new NumberedSources(index.SourcePrefix ?? Path.GetFileName(path), index.Count);
        return new ImageStore(new FilePixels(path, index.PixelBytes), index.Channels, index.Height, index.Width, index.Labels, index.LabelNames,
            sources, index.Skipped, cacheFile: path);
    }

    private sealed class CacheIndex
    {
        public string Key { get; set; } = "";
        public int Count { get; set; }
        public int Channels { get; set; }
        public int Height { get; set; }
        public int Width { get; set; }
        public long PixelBytes { get; set; }
        public int[]? Labels { get; set; }
        public List<string>? LabelNames { get; set; }
        public List<string> Skipped { get; set; } = [];
        public string? SourcePrefix { get; set; }
        public List<string>? Sources { get; set; }
    }
}
