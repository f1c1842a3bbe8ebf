using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace MLNet.Contrastive.Runtime;

/// <summary>
/// Makes TorchSharp's native library load where the system libstdc++ predates GCC 13
/// (Debian 12, Ubuntu 22.04). TorchSharp 0.107's <c>libLibTorchSharp.so</c> needs the version
/// GLIBCXX_3.4.32 only for <c>std::ios_base_library_init()</c>, a link-time anchor that is never called.
/// On such systems a copy of the library with that one version need marked weak is written to a cache
/// folder and handed to the runtime in place of the original; elsewhere nothing changes.
/// </summary>
public static class TorchRuntime
{
    private const string LibraryName = "LibTorchSharp";
    private const string LibraryFile = "libLibTorchSharp.so";
    private const string MissingVersion = "GLIBCXX_3.4.32";
    // What libLibTorchSharp.so links against from its own folder; its RUNPATH ($ORIGIN) does not
    // reach them from the cache folder, so they are loaded first from the original folder.
    private static readonly string[] TorchDependencies = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    private static readonly Lazy<IntPtr> PatchedHandle = new(LoadPatchedCopy);
    private static int registered;

    /// <summary>Where the patched copy was written; null when none was needed.</summary>
    public static string? PatchedLibraryPath { get; private set; }

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "The resolver must be registered before TorchSharp first loads its native library.")]
    internal static void OnModuleLoad() => Initialize();

    /// <summary>
    /// Registers the native resolver for TorchSharp. Runs automatically when this library is first used;
    /// call it yourself only if you use TorchSharp before any MLNet.Contrastive type. Idempotent.
    /// </summary>
    public static void Initialize()
    {
        if (Interlocked.Exchange(ref registered, 1) == 1 || !OperatingSystem.IsLinux()) return;
        System.Runtime.Loader.AssemblyLoadContext.Default.ResolvingUnmanagedDll += (assembly, name) =>
            name == LibraryName && assembly == typeof(torch).Assembly ? PatchedHandle.Value : IntPtr.Zero;
        var torchFolder = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        OneDnnConvolutionsOff = OneDnnGuard.Apply(torchFolder);
        NativeLogLevel.Apply(torchFolder);
    }

    /// <summary>
    /// Whether libtorch's oneDNN convolutions were turned off because this CPU reports no cache hierarchy (on which they
    /// crash or give wrong values), or because the environment variable MLNET_CONTRASTIVE_ONEDNN is off.
    /// </summary>
    public static bool OneDnnConvolutionsOff { get; private set; }

    /// <summary>
    /// The most CPU threads a run may ask for: 4 per processor (at least 64). More only queue behind each other, and a
    /// mistyped count (100,000) would make libtorch start that many threads.
    /// </summary>
    public static int MaxThreads => Math.Max(64, 4 * Environment.ProcessorCount);

    /// <summary>Checks a thread count: positive and at most <see cref="MaxThreads"/>.</summary>
    public static void CheckThreads(int threads, string name)
    {
        if (threads <= 0 || threads > MaxThreads)
            throw new ArgumentOutOfRangeException(name, threads,
                $"The thread count must be between 1 and {MaxThreads} (4 per processor; this machine has {Environment.ProcessorCount}).");
    }

    /// <summary>Sets the number of CPU threads libtorch uses for intra-op parallelism.</summary>
    public static void SetThreads(int threads)
    {
        CheckThreads(threads, nameof(threads));
        torch.set_num_threads(threads);
    }

    private static IntPtr LoadPatchedCopy()
    {
        var original = FindOriginal();
        // This library references only the managed TorchSharp; libtorch comes from the application's TorchSharp-cpu or
        // TorchSharp-cuda-* package. Without it every first call into TorchSharp fails with a bare DllNotFoundException.
        if (original is not null && !File.Exists(Path.Combine(Path.GetDirectoryName(original)!, "libtorch.so")))
            throw new DllNotFoundException(
                $"libtorch, the native library TorchSharp calls, was not found next to {original}: the application must reference " +
                "TorchSharp-cpu (CPU) or a TorchSharp-cuda package (CUDA). MLNet.Contrastive depends only on the managed TorchSharp so that the application chooses.");
        try
        {
            if (original is null || SystemLibStdCxxHas(MissingVersion)) return IntPtr.Zero;
            var elf = File.ReadAllBytes(original);
            if (!ElfVersions.MarkNeedWeak(elf, MissingVersion)) return IntPtr.Zero;

            var hash = Convert.ToHexString(SHA256.HashData(elf))[..16].ToLowerInvariant();
            var folder = Path.Combine(CacheRoot(), "native", hash);
            var patched = Path.Combine(folder, LibraryFile);
            if (!File.Exists(patched)) AtomicFile.WriteAllBytes(patched, elf);

            var originalFolder = Path.GetDirectoryName(original)!;
            foreach (var dependency in TorchDependencies)
            {
                var path = Path.Combine(originalFolder, dependency);
                if (File.Exists(path)) NativeLibrary.Load(path);
            }
            var handle = NativeLibrary.Load(patched);
            PatchedLibraryPath = patched;
            Trace.TraceInformation($"MLNet.Contrastive: loaded {patched} ({MissingVersion} need marked weak; the system libstdc++ lacks it).");
            return handle;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or BadImageFormatException or InvalidDataException)
        {
            Trace.TraceWarning($"MLNet.Contrastive: could not prepare a loadable {LibraryFile}: {e.Message}");
            return IntPtr.Zero;
        }
    }

    private static string? FindOriginal() => FindNative(LibraryFile, Path.GetDirectoryName(typeof(torch).Assembly.Location));

    /// <summary>
    /// Where the runtime would find the native library <paramref name="file"/>: the application's native search folders,
    /// then <paramref name="folder"/> (an assembly's or the application's) and its runtimes/linux-x64/native.
    /// </summary>
    internal static string? FindNative(string file, string? folder)
    {
        var folders = (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).ToList();
        if (!string.IsNullOrEmpty(folder))
        {
            folders.Add(folder);
            folders.Add(Path.Combine(folder, "runtimes", "linux-x64", "native"));
        }
        return folders.Select(f => Path.Combine(f, file)).FirstOrDefault(File.Exists);
    }

    private static bool SystemLibStdCxxHas(string version)
    {
        var path = LoadedLibStdCxx();
        if (path is null && NativeLibrary.TryLoad("libstdc++.so.6", out _)) path = LoadedLibStdCxx();
        return path is not null && ElfVersions.DefinedVersions(File.ReadAllBytes(path)).Contains(version);
    }

    private static string? LoadedLibStdCxx() =>
        File.ReadLines("/proc/self/maps")
            .Select(line => line.IndexOf('/') is var at and >= 0 ? line[at..] : null)
            .FirstOrDefault(path => path is not null && Path.GetFileName(path).StartsWith("libstdc++.so", StringComparison.Ordinal));

    private static string CacheRoot()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return !string.IsNullOrEmpty(xdg) ? Path.Combine(xdg, "mlnet-contrastive")
            : !string.IsNullOrEmpty(home) ? Path.Combine(home, ".cache", "mlnet-contrastive")
            : Path.Combine(Path.GetTempPath(), "mlnet-contrastive");
    }
}
