using System.IO.MemoryMappedFiles;

namespace MLNet.Contrastive.Data;

/// <summary>Where an <see cref="ImageStore"/>'s uint8 pixels live: an array in memory, or a memory-mapped cache file.</summary>
internal abstract class PixelStorage
{
    /// <summary>Bytes held.</summary>
    public abstract long Length { get; }

    /// <summary><paramref name="length"/> bytes from <paramref name="offset"/>.</summary>
    public abstract ReadOnlySpan<byte> Slice(long offset, int length);
}

/// <summary>Pixels in one array.</summary>
internal sealed class ArrayPixels(byte[] pixels) : PixelStorage
{
    public override long Length => pixels.LongLength;

    public override ReadOnlySpan<byte> Slice(long offset, int length) => pixels.AsSpan(checked((int)offset), length);
}

/// <summary>
/// Pixels read through a read-only memory map of a cache file: the operating system pages them in as training reads
/// them and may drop them again under memory pressure (they are clean file pages, not the process's own memory).
/// </summary>
internal sealed unsafe class MappedPixels : PixelStorage
{
    private readonly MemoryMappedFile file;
    private readonly MemoryMappedViewAccessor view;
    private readonly byte* start;

    public MappedPixels(string path, long length)
    {
        Length = length;
        file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        start = pointer + view.PointerOffset;
    }

    public override long Length { get; }

    public override ReadOnlySpan<byte> Slice(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Length) throw new ArgumentOutOfRangeException(nameof(offset));
        return new ReadOnlySpan<byte>(start + offset, length);
    }

    // The map lives as long as the store: a store is used until training ends, and many stores share nothing to free early.
    ~MappedPixels()
    {
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        file.Dispose();
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
