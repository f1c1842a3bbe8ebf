using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace MLNet.Contrastive.Runtime;

/// <summary>
/// Keeps libtorch's oneDNN convolutions off CPUs that report no cache hierarchy. oneDNN (libtorch 2.10) sizes its
/// convolution kernels from the caches CPUID describes — leaf 4 on Intel, leaf 0x8000001D on AMD. Some virtual machines
/// (AMD EPYC guests without the TOPOEXT flag) describe none there: oneDNN's 1 × 1 training convolutions then divide by
/// zero (SIGFPE, the process dies — a ResNet-50 step) and others return wrong values (a ResNet-18 off by 0.05 against
/// ONNX Runtime after one SimCLR step). There convolutions run on libtorch's own kernels instead
/// (<c>at::Context::setUserEnabledMkldnn(false)</c>, what PyTorch's <c>torch.backends.mkldnn.enabled = False</c> sets).
/// The environment variable <see cref="Variable"/> overrides the check: <c>on</c> keeps oneDNN, <c>off</c> turns it off.
/// </summary>
internal static class OneDnnGuard
{
    /// <summary>The environment variable that overrides the CPU check: on or off.</summary>
    public const string Variable = "MLNET_CONTRASTIVE_ONEDNN";

    private const string TorchCpu = "libtorch_cpu.so";

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContext();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetEnabled(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    private delegate bool GetEnabled(IntPtr context);

    /// <summary>Whether the CPU describes at least one cache in the CPUID leaf oneDNN reads (true where there is no CPUID to ask).</summary>
    internal static bool CpuReportsCaches()
    {
        if (!X86Base.IsSupported) return true;
        var (_, b, c, d) = X86Base.CpuId(0, 0);
        var vendor = string.Concat(new[] { b, d, c }.Select(r => System.Text.Encoding.ASCII.GetString(BitConverter.GetBytes(r))));
        var amd = vendor is "AuthenticAMD" or "HygonGenuine";
        var leaf = amd ? unchecked((int)0x8000001D) : 4;
        var highest = X86Base.CpuId(amd ? unchecked((int)0x80000000) : 0, 0).Eax;
        if ((uint)highest < (uint)leaf) return false;
        // Each subleaf describes one cache; type 0 ends the list.
        for (var subleaf = 0; subleaf < 8; subleaf++)
        {
            var (eax, ebx, ecx, _) = X86Base.CpuId(leaf, subleaf);
            if ((eax & 0x1F) == 0) break;
            long ways = ((ebx >> 22) & 0x3FF) + 1, partitions = ((ebx >> 12) & 0x3FF) + 1, line = (ebx & 0xFFF) + 1, sets = (uint)ecx + 1L;
            if (ways * partitions * line * sets > 0) return true;
        }
        return false;
    }

    /// <summary>
    /// Turns oneDNN's convolutions off in the libtorch beside TorchSharp (found from <paramref name="torchFolder"/>) where
    /// the CPU reports no caches, or as <see cref="Variable"/> says. Returns whether they are off; false when libtorch is not found.
    /// </summary>
    internal static bool Apply(string? torchFolder)
    {
        var setting = Environment.GetEnvironmentVariable(Variable)?.Trim().ToLowerInvariant();
        var disable = setting switch
        {
            "off" or "0" or "false" => true,
            "on" or "1" or "true" => false,
            _ => !CpuReportsCaches(),
        };
        if (!disable || !OperatingSystem.IsLinux()) return false;
        if (TorchRuntime.FindNative(TorchCpu, torchFolder) is not { } path) return false;
        try
        {
            // The same file libLibTorchSharp.so links against, so the same loaded library and the same global context.
            var (handle, context) = Open(path);
            Marshal.GetDelegateForFunctionPointer<SetEnabled>(NativeLibrary.GetExport(handle, "_ZN2at7Context20setUserEnabledMkldnnEb"))(context, false);
            Trace.TraceInformation(setting is null
                ? $"MLNet.Contrastive: this CPU reports no cache hierarchy to CPUID, on which oneDNN's convolutions crash or err; libtorch's own convolutions run instead ({Variable}=on keeps oneDNN)."
                : $"MLNet.Contrastive: oneDNN's convolutions are off ({Variable}={setting}).");
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            Trace.TraceWarning($"MLNet.Contrastive: could not turn oneDNN's convolutions off in {path}: {e.Message}");
            return false;
        }
    }

    /// <summary>What libtorch's global context says now: whether oneDNN may run (null when libtorch is not found).</summary>
    internal static bool? Enabled(string? torchFolder)
    {
        if (TorchRuntime.FindNative(TorchCpu, torchFolder) is not { } path) return null;
        var (handle, context) = Open(path);
        return Marshal.GetDelegateForFunctionPointer<GetEnabled>(NativeLibrary.GetExport(handle, "_ZNK2at7Context17userEnabledMkldnnEv"))(context);
    }

    /// <summary>The loaded library at <paramref name="path"/> and its <c>at::globalContext()</c>.</summary>
    private static (IntPtr Handle, IntPtr Context) Open(string path)
    {
        var handle = NativeLibrary.Load(path);
        return (handle, Marshal.GetDelegateForFunctionPointer<GlobalContext>(NativeLibrary.GetExport(handle, "_ZN2at13globalContextEv"))());
    }
}
