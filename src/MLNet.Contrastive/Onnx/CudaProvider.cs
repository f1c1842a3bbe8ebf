using System.Runtime.InteropServices;
using MLNet.Contrastive.Runtime;

namespace MLNet.Contrastive.Onnx;

/// <summary>
/// Whether ONNX Runtime's CUDA execution provider can load, asked before ONNX Runtime tries: where a library it
/// links against is missing (libcublasLt.so.13 on a machine without CUDA 13), ONNX Runtime's own attempt dlopens the
/// provider half-way and fails; the provider is then never asked for, so no process carries a half-loaded provider.
/// </summary>
internal static class CudaProvider
{
    private const string ProviderFile = "libonnxruntime_providers_cuda.so";

    private static readonly Lazy<string?> Missing = new(FindMissing);

    /// <summary>Null when the provider's libraries all load; otherwise why the CUDA provider is not available.</summary>
    public static string? Unavailable => OperatingSystem.IsLinux() ? Missing.Value : null;

    private static string? FindMissing()
    {
        var provider = ProviderPath();
        if (provider is null) return $"{ProviderFile} is not in the application (reference Microsoft.ML.OnnxRuntime.Gpu for CUDA)";
        IReadOnlyList<string> needed;
        try
        {
            needed = ElfVersions.NeededLibraries(provider);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return $"{provider} cannot be read ({e.Message})";
        }
        // Libraries beside the provider (ONNX Runtime's own) load from there; the rest must be found on the system.
        var folder = Path.GetDirectoryName(provider)!;
        var missing = needed.Where(name => !File.Exists(Path.Combine(folder, name)) && !CanLoad(name)).ToList();
        return missing.Count == 0 ? null : $"{string.Join(", ", missing)} not found: the CUDA provider needs the CUDA and cuDNN versions its ONNX Runtime was built for";
    }

    private static bool CanLoad(string name)
    {
        if (!NativeLibrary.TryLoad(name, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }

    /// <summary>The provider beside ONNX Runtime's native library, where the application's runtime looks for it.</summary>
    internal static string? ProviderPath() => TorchRuntime.FindNative(ProviderFile, AppContext.BaseDirectory);
}
