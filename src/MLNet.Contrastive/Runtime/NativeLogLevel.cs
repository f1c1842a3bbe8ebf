using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MLNet.Contrastive.Runtime;

/// <summary>
/// Keeps libtorch's c10 log to errors unless the user says otherwise. On CPUs NNPACK does not support, libtorch 2.10
/// logs "Could not initialize NNPACK! Reason: Unsupported hardware." on stderr for convolutions again and again (about
/// twenty lines a training step), burying a run's progress and a test log. PyTorch reads its variable
/// <see cref="Variable"/> in <c>c10::initLogging()</c>, which TorchSharp never calls: where the variable is set, it is
/// honoured the same way; where it is not, the threshold of what reaches stderr (<c>FLAGS_caffe2_log_level</c>) becomes
/// ERROR. TorchSharp's own errors and warnings (exceptions, <c>TORCH_WARN</c>) do not pass through this log.
/// </summary>
internal static class NativeLogLevel
{
    /// <summary>PyTorch's variable: INFO, WARNING, ERROR or FATAL (or 0–3).</summary>
    public const string Variable = "TORCH_CPP_LOG_LEVEL";

    /// <summary>c10's severity of errors (INFO 0, WARNING 1, ERROR 2, FATAL 3).</summary>
    public const int Error = 2;

    private const string C10 = "libc10.so";
    private const string Threshold = "FLAGS_caffe2_log_level";

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void InitLogging();

    /// <summary>
    /// Applies the threshold in the libc10 beside TorchSharp (found from <paramref name="torchFolder"/>): the variable's
    /// when set, ERROR otherwise. Returns the threshold now in force; null when libc10 is not found.
    /// </summary>
    internal static int? Apply(string? torchFolder)
    {
        if (!OperatingSystem.IsLinux() || TorchRuntime.FindNative(C10, torchFolder) is not { } path) return null;
        try
        {
            // The same file libLibTorchSharp.so links against, so the same loaded library and the same flag.
            var handle = NativeLibrary.Load(path);
            var threshold = NativeLibrary.GetExport(handle, Threshold);
            if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(Variable)))
                Marshal.WriteInt32(threshold, Error);
            else
            {
                // .NET keeps its own copy of the environment; c10 reads the process's, so hand the value over first.
                setenv(Variable, Environment.GetEnvironmentVariable(Variable)!, 1);
                Marshal.GetDelegateForFunctionPointer<InitLogging>(NativeLibrary.GetExport(handle, "_ZN3c1011initLoggingEv"))();
            }
            return Marshal.ReadInt32(threshold);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            Trace.TraceWarning($"MLNet.Contrastive: could not set libtorch's log level in {path}: {e.Message}");
            return null;
        }
    }

    /// <summary>The threshold in force now (null when libc10 is not found).</summary>
    internal static int? Current(string? torchFolder) =>
        TorchRuntime.FindNative(C10, torchFolder) is { } path
            ? Marshal.ReadInt32(NativeLibrary.GetExport(NativeLibrary.Load(path), Threshold))
            : null;

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv(string name, string value, int overwrite);
}
