using System.Runtime.InteropServices;
using MLNet.Contrastive.Runtime;

namespace MLNet.Contrastive.Tests.Runtime;

public class NativeHeapTests
{
    private static long VmRssBytes() =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;

    [Test]
    public void ResidentBytesIsTheProcesssResidentMemoryAndTrimmingGivesFreedPagesBack()
    {
        // Earlier tests' tensors are freed by finalizers on another thread: let them go first, so that they do not shrink
        // the process while this test measures its growth (a CI run saw 205 MB of the 256 MiB touched: 51 MB freed meanwhile).
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        NativeHeap.Trim();
        var before = NativeHeap.ResidentBytes();
        Assert.That(before, Is.EqualTo(VmRssBytes()).Within(64 << 20), "statm's resident pages against status's VmRSS");

        // 256 MiB in 4 MiB blocks, touched, then freed: whether glibc's moving mmap threshold put them on the heap or in
        // mappings of their own, after the trim resident memory returns near where it was.
        var blocks = Enumerable.Range(0, 64).Select(_ => Marshal.AllocHGlobal(4 << 20)).ToList();
        foreach (var block in blocks)
            for (var page = 0; page < 4 << 20; page += 4096) Marshal.WriteByte(block, page, 1);
        var touched = NativeHeap.ResidentBytes();
        // Other threads may still free some memory meanwhile: half of what was touched is the bound, well above noise.
        Assert.That(touched - before, Is.GreaterThan(128L << 20));
        foreach (var block in blocks) Marshal.FreeHGlobal(block);
        NativeHeap.Trim();
        Assert.That(NativeHeap.ResidentBytes() - before, Is.LessThan(64L << 20));
    }
}
