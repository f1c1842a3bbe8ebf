using System.Runtime.InteropServices;

namespace MLNet.Contrastive.Runtime;

/// <summary>
/// glibc's malloc keeps memory that libtorch frees for later allocations, and its main heap fragments under training's
/// pattern of tens-of-megabyte tensors: at 96 × 96 RGB it grew to 2.4 GB around a live set of about 0.5 GB. <see cref="Trim"/>
/// hands the free pages back to the system. Gradient-cached steps trim between their passes, again whenever resident
/// memory has grown by 256 MiB over the passes with a graph, and after the step; plain steps whose views take 16 MB or
/// more (64 px RGB and larger) trim after each step (docs/performance.md has the figures).
/// </summary>
internal static class NativeHeap
{
    private const int AdviseHugePage = 14;       // MADV_HUGEPAGE
    private const long HugePage = 2 << 20;
    private static bool unavailable = !OperatingSystem.IsLinux();
    private static nint? heapStart;

    /// <summary>
    /// Returns free heap pages of every arena to the system (glibc's malloc_trim), after asking for transparent huge pages
    /// on the main heap, so that the pages the next step touches again come back 2 MiB per fault instead of 4 KiB (without
    /// that, trimming after each step cost 13–24 % of the speed at 96 px). Nothing off Linux or without glibc.
    /// </summary>
    public static void Trim()
    {
        if (unavailable) return;
        try
        {
            AdviseHugePagesOnHeap();
            malloc_trim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or IOException or UnauthorizedAccessException)
        {
            unavailable = true;
        }
    }

    /// <summary>The process's resident memory in bytes (/proc/self/statm); 0 where it cannot be read.</summary>
    public static long ResidentBytes()
    {
        if (unavailable) return 0;
        try
        {
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1]) * Environment.SystemPageSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 0;
        }
    }

    /// <summary>
    /// madvise(MADV_HUGEPAGE) on the main heap up to the current break; again on every call, since the kernel gives the
    /// heap's growth a mapping of its own without the advice. A no-op where transparent huge pages are off.
    /// </summary>
    private static void AdviseHugePagesOnHeap()
    {
        // Looked up once (a step must not read /proc each time); 0 when the process has no [heap] mapping.
        heapStart ??= File.ReadLines("/proc/self/maps").FirstOrDefault(l => l.EndsWith("[heap]", StringComparison.Ordinal)) is { } line
            ? (nint)Convert.ToInt64(line[..line.IndexOf('-')], 16)
            : 0;
        if (heapStart == 0) return;
        var start = (nint)((heapStart.Value + HugePage - 1) & ~(HugePage - 1));
        var end = sbrk(0);
        if (end > start) madvise(start, (nuint)(end - start), AdviseHugePage);
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    [DllImport("libc", EntryPoint = "sbrk")]
    private static extern nint sbrk(nint increment);

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int madvise(nint address, nuint length, int advice);
}
