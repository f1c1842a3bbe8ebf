using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Runtime;

public class TorchRuntimeTests
{
    [Test]
    public void TensorOperationRuns()
    {
        TorchRuntime.Initialize();
        using var a = tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
        using var product = a.matmul(a);
        Assert.That(product.data<float>().ToArray(), Is.EqualTo(new float[] { 7, 10, 15, 22 }));
    }

    [Test]
    public void PatchedCopyIsUsedExactlyWhenTheSystemLibStdCxxLacksTheVersion()
    {
        TorchRuntime.Initialize();
        using var _ = ones(1);
        var libstdcxx = File.ReadLines("/proc/self/maps").Select(l => l[(l.IndexOf('/') is var i and >= 0 ? i : l.Length)..])
            .First(p => Path.GetFileName(p).StartsWith("libstdc++.so", StringComparison.Ordinal));
        var systemHasIt = ElfVersions.DefinedVersions(File.ReadAllBytes(libstdcxx)).Contains("GLIBCXX_3.4.32");
        Assert.That(TorchRuntime.PatchedLibraryPath is not null, Is.EqualTo(!systemHasIt));
        if (TorchRuntime.PatchedLibraryPath is { } patched)
            Assert.That(ElfVersions.NeededVersions(File.ReadAllBytes(patched)).Single(n => n.Version == "GLIBCXX_3.4.32").FlagsOffset, Is.Positive);
    }
}

public class ElfVersionsTests
{
    private static string OriginalLibrary() =>
        new[] { TestContext.CurrentContext.TestDirectory, Path.Combine(TestContext.CurrentContext.TestDirectory, "runtimes", "linux-x64", "native") }
            .Select(d => Path.Combine(d, "libLibTorchSharp.so")).First(File.Exists);

    [Test]
    public void MarkingTheNeedWeakChangesOnlyItsFlags()
    {
        var original = File.ReadAllBytes(OriginalLibrary());
        var need = ElfVersions.NeededVersions(original).Single(n => n.Version == "GLIBCXX_3.4.32");
        Assert.That(need.File, Is.EqualTo("libstdc++.so.6"));

        var patched = (byte[])original.Clone();
        Assert.That(ElfVersions.MarkNeedWeak(patched, "GLIBCXX_3.4.32"), Is.True);
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToArray();
        Assert.That(changed, Is.EqualTo(new[] { need.FlagsOffset }));
        Assert.That(patched[need.FlagsOffset] & ElfVersions.VerFlagWeak, Is.EqualTo(ElfVersions.VerFlagWeak));
        // Every other version need is untouched.
        Assert.That(ElfVersions.NeededVersions(patched).Select(n => n.Version), Is.EqualTo(ElfVersions.NeededVersions(original).Select(n => n.Version)));
    }

    [Test]
    public void AbsentVersionIsReportedAndNothingChanges()
    {
        var original = File.ReadAllBytes(OriginalLibrary());
        var copy = (byte[])original.Clone();
        Assert.That(ElfVersions.MarkNeedWeak(copy, "GLIBCXX_9.9.9"), Is.False);
        Assert.That(copy, Is.EqualTo(original));
    }

    [Test]
    public void NeededLibrariesAreReadAndADamagedObjectIsNamed()
    {
        var original = OriginalLibrary();
        Assert.That(ElfVersions.NeededLibraries(original), Does.Contain("libtorch.so").And.Contain("libc.so.6"));
        using var folder = TestData.NewFolder();
        var bytes = File.ReadAllBytes(original);
        File.WriteAllBytes(folder["cut.so"], bytes[..4096]);
        Assert.That(() => ElfVersions.NeededLibraries(folder["cut.so"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["cut.so"] + ": not a well-formed ELF file"));
        // Bytes of the section-header table replaced at random: a list or that error, never another exception.
        var table = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0x28));
        var random = new Random(5);
        for (var trial = 0; trial < 200; trial++)
        {
            var damaged = (byte[])bytes.Clone();
            for (var i = 0; i < 8; i++) damaged[Math.Min(damaged.Length - 1, table + random.Next(64 * 40))] = (byte)random.Next(256);
            File.WriteAllBytes(folder["damaged.so"], damaged);
            Assert.That(() => { try { ElfVersions.NeededLibraries(folder["damaged.so"]); } catch (InvalidDataException) { } }, Throws.Nothing, $"trial {trial}");
        }
    }

    [Test]
    public void NonElfInputIsRejected() =>
        Assert.That(() => ElfVersions.DefinedVersions(new byte[100]), Throws.TypeOf<InvalidDataException>());

    [TestCase(0)]
    [TestCase(100_000)]
    public void ThreadCountsOutsideOneToFourPerProcessorAreRefusedBeforeTraining(int threads)
    {
        Assert.That(TorchRuntime.MaxThreads, Is.EqualTo(Math.Max(64, 4 * Environment.ProcessorCount)));
        Assert.That(() => new MLNet.Contrastive.Training.Pretrainer(new MLNet.Contrastive.Training.PretrainOptions { Run = { Threads = threads } }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains($"between 1 and {TorchRuntime.MaxThreads}").And.Message.Contains("Threads"));
    }
}
