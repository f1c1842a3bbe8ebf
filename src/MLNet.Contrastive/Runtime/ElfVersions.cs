using System.Buffers.Binary;
using System.Text;

namespace MLNet.Contrastive.Runtime;

/// <summary>
/// Reads and edits the symbol-version sections of a little-endian ELF64 shared object:
/// <c>.gnu.version_d</c> (versions a library defines) and <c>.gnu.version_r</c> (versions it needs); reads the
/// libraries it needs (<c>.dynamic</c>'s DT_NEEDED).
/// </summary>
internal static class ElfVersions
{
    private const uint ShtGnuVerdef = 0x6ffffffd;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtDynamic = 6;
    private const long DtNeeded = 1;
    /// <summary>VER_FLG_WEAK: the dynamic loader tolerates a missing weak version need.</summary>
    internal const ushort VerFlagWeak = 0x2;

    /// <summary>The version names the object defines, e.g. GLIBCXX_3.4.30 for libstdc++.</summary>
    public static IReadOnlyList<string> DefinedVersions(byte[] elf)
    {
        var names = new List<string>();
        foreach (var (section, strings) in Sections(elf, ShtGnuVerdef))
        {
            // Elf64_Verdef: vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32, vd_aux u32, vd_next u32.
            // Elf64_Verdaux: vda_name u32, vda_next u32.
            var offset = section;
            while (true)
            {
                var aux = offset + (int)U32(elf, offset + 12);
                names.Add(CString(elf, strings + (int)U32(elf, aux)));
                var next = U32(elf, offset + 16);
                if (next == 0) break;
                offset += (int)next;
            }
        }
        return names;
    }

    /// <summary>Each needed version as (file, version name, file offset of its vna_flags field).</summary>
    public static IReadOnlyList<(string File, string Version, int FlagsOffset)> NeededVersions(byte[] elf)
    {
        var needs = new List<(string, string, int)>();
        foreach (var (section, strings) in Sections(elf, ShtGnuVerneed))
        {
            // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
            // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
            var offset = section;
            while (true)
            {
                var file = CString(elf, strings + (int)U32(elf, offset + 4));
                var aux = offset + (int)U32(elf, offset + 8);
                for (var i = 0; i < U16(elf, offset + 2); i++)
                {
                    needs.Add((file, CString(elf, strings + (int)U32(elf, aux + 8)), aux + 4));
                    aux += (int)U32(elf, aux + 12);
                }
                var next = U32(elf, offset + 12);
                if (next == 0) break;
                offset += (int)next;
            }
        }
        return needs;
    }

    /// <summary>Sets VER_FLG_WEAK on the named version need; returns false when the object does not need it.</summary>
    public static bool MarkNeedWeak(byte[] elf, string version)
    {
        var found = false;
        foreach (var need in NeededVersions(elf).Where(n => n.Version == version))
        {
            var flags = (ushort)(U16(elf, need.FlagsOffset) | VerFlagWeak);
            BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(need.FlagsOffset), flags);
            found = true;
        }
        return found;
    }

    /// <summary>
    /// The DT_NEEDED entries (the shared libraries the dynamic loader must find) of the ELF64 object at
    /// <paramref name="path"/>, read by seeking to its section headers and dynamic section only (ONNX Runtime's CUDA
    /// provider is 280 MB).
    /// </summary>
    public static IReadOnlyList<string> NeededLibraries(string path)
    {
        try
        {
            return ReadNeededLibraries(path);
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or ArgumentException or IndexOutOfRangeException or EndOfStreamException)
        {
            // An offset or string index that points outside what was read: a damaged or truncated object.
            throw new InvalidDataException($"{path}: not a well-formed ELF file ({e.Message.Split('\n')[0]}).", e);
        }
    }

    private static IReadOnlyList<string> ReadNeededLibraries(string path)
    {
        using var file = File.OpenRead(path);
        byte[] Read(long offset, long length)
        {
            if (offset < 0 || length < 0 || offset + length > file.Length) throw new InvalidDataException($"{path}: not a well-formed ELF file.");
            var bytes = new byte[length];
            file.Position = offset;
            file.ReadExactly(bytes);
            return bytes;
        }
        var header = Read(0, 64);
        if (header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F' || header[4] != 2 || header[5] != 1)
            throw new InvalidDataException($"{path}: not a little-endian ELF64 object.");
        var tableOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(0x28));
        int entrySize = U16(header, 0x3a), count = U16(header, 0x3c);
        var table = Read(tableOffset, (long)entrySize * count);
        var needed = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var at = i * entrySize;
            if (U32(table, at + 4) != ShtDynamic) continue;
            var dynamic = Read((long)BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(at + 24)), (long)BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(at + 32)));
            var link = (int)U32(table, at + 40) * entrySize;
            var strings = Read((long)BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(link + 24)), (long)BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(link + 32)));
            // Elf64_Dyn: d_tag i64, d_val u64; the list ends at DT_NULL.
            for (var entry = 0; entry + 16 <= dynamic.Length; entry += 16)
            {
                var tag = BinaryPrimitives.ReadInt64LittleEndian(dynamic.AsSpan(entry));
                if (tag == 0) break;
                if (tag == DtNeeded) needed.Add(CString(strings, (int)BinaryPrimitives.ReadUInt64LittleEndian(dynamic.AsSpan(entry + 8))));
            }
        }
        return needed;
    }

    private static IEnumerable<(int Offset, int StringsOffset)> Sections(byte[] elf, uint type)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("Not an ELF file.");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("Only little-endian ELF64 objects are supported.");
        var sectionTable = (int)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x28));
        int entrySize = U16(elf, 0x3a), count = U16(elf, 0x3c);
        for (var i = 0; i < count; i++)
        {
            var header = sectionTable + i * entrySize;
            if (U32(elf, header + 4) != type) continue;
            var link = (int)U32(elf, header + 40);
            var strings = (int)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(sectionTable + link * entrySize + 24));
            yield return ((int)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(header + 24)), strings);
        }
    }

    private static ushort U16(byte[] b, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(offset));
    private static uint U32(byte[] b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(offset));

    private static string CString(byte[] b, int offset)
    {
        var end = Array.IndexOf(b, (byte)0, offset);
        return Encoding.ASCII.GetString(b, offset, end - offset);
    }
}
