namespace MLNet.Contrastive.Data;

/// <summary>Where an <see cref="ImageStore"/>'s uint8 pixels live: an array in memory, or a cache file read as batches need it.</summary>
internal abstract class PixelStorage
{
    /// <summary>Bytes held.</summary>
    public abstract long Length { get; }

    /// <summary><paramref name="length"/> bytes from <paramref name="offset"/> (the array's own, or a copy).</summary>
    public virtual ReadOnlySpan<byte> Read(long offset, int length)
    {
        var bytes = new byte[length];
        CopyTo(offset, bytes);
        return bytes;
    }

    /// <summary>Copies <paramref name="destination"/>'s length of bytes from <paramref name="offset"/> into it.</summary>
    public abstract void CopyTo(long offset, Span<byte> destination);
}

/// <summary>Pixels in one array.</summary>
internal sealed class ArrayPixels(byte[] pixels) : PixelStorage
{
    public override long Length => pixels.LongLength;

    public override ReadOnlySpan<byte> Read(long offset, int length) => pixels.AsSpan(checked((int)offset), length);

    public override void CopyTo(long offset, Span<byte> destination) => Read(offset, destination.Length).CopyTo(destination);
}

/// <summary>
/// Pixels read from a cache file with one positioned read per image (thread-safe). The file's pages stay in the
/// operating system's page cache, shared and reclaimable, and out of the process's resident memory: a memory map was
/// measured first, and the pages each touched image brought into the map (64 KiB of fault-around each) made the
/// process grow with the dataset (0.95 GiB at 60,000 images, 1.37 GiB at 600,000; docs/performance.md).
/// </summary>
internal sealed class FilePixels : PixelStorage
{
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle file;
    private readonly string path;

    public FilePixels(string path, long length)
    {
        Length = length;
        this.path = path;
        file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, FileOptions.RandomAccess);
    }

    public override long Length { get; }

    public override void CopyTo(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset + destination.Length > Length) throw new ArgumentOutOfRangeException(nameof(offset));
        while (destination.Length > 0)
        {
            var read = RandomAccess.Read(file, destination, offset);
            if (read == 0) throw new ImageDataException(path, $"the cache file ended at byte {offset:N0}, before the {Length:N0} bytes of its pixels (it was cut after it was opened); delete it to decode the images again.");
            destination = destination[read..];
            offset += read;
        }
    }
}

/// <summary>
/// Images of another storage by index — a subset, or images repeated (FixMatch's labelled rows) — without copying
/// them: a copy of 79,200 rows of 96 × 96 RGB would need one array beyond .NET's 2 GiB.
/// </summary>
internal sealed class RowPixels : PixelStorage
{
    private readonly PixelStorage source;
    private readonly int[] rows;
    private readonly int imageSize;

    /// <summary>Images <paramref name="rows"/> of <paramref name="source"/>, in that order (a view of a view reads its source directly).</summary>
    public RowPixels(PixelStorage source, IReadOnlyList<int> rows, int imageSize)
    {
        (this.source, this.rows) = source is RowPixels view ? (view.source, rows.Select(row => view.rows[row]).ToArray()) : (source, rows.ToArray());
        this.imageSize = imageSize;
    }

    public override long Length => (long)rows.Length * imageSize;

    public override ReadOnlySpan<byte> Read(long offset, int length)
    {
        if (length == imageSize && offset % imageSize == 0 && offset >= 0 && offset < Length)
            return source.Read((long)rows[offset / imageSize] * imageSize, imageSize);
        return base.Read(offset, length);
    }

    public override void CopyTo(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset + destination.Length > Length) throw new ArgumentOutOfRangeException(nameof(offset));
        while (destination.Length > 0)
        {
            var within = (int)(offset % imageSize);
            var count = Math.Min(imageSize - within, destination.Length);
            source.CopyTo((long)rows[offset / imageSize] * imageSize + within, destination[..count]);
            destination = destination[count..];
            offset += count;
        }
    }
}

/// <summary>Sources named "name#i" for the i-th image of one file, without a string per image.</summary>
internal sealed class NumberedSources(string name, int count) : IReadOnlyList<string>
{
    public string this[int index] => (uint)index < (uint)count ? $"{name}#{index}" : throw new ArgumentOutOfRangeException(nameof(index));

    public int Count => count;

    public IEnumerator<string> GetEnumerator()
    {
        for (var i = 0; i < count; i++) yield return this[i];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
