using System.Diagnostics;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>Runs a command body, turning input errors into one clear line on stderr and exit code 1.</summary>
internal static class CommandRunner
{
    /// <summary>
    /// Cancelled by the first Ctrl+C (SIGINT): training finishes the step under way, writes its checkpoint and stops,
    /// and the command exits with 130. A second Ctrl+C ends the process at once.
    /// </summary>
    public static CancellationToken Interrupted => Interrupt.Token;

    private static readonly CancellationTokenSource Interrupt = ListenForCtrlC();

    private static CancellationTokenSource ListenForCtrlC()
    {
        var source = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            if (source.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine("Stopping after the current step (Ctrl+C again to quit at once)…");
            source.Cancel();
        };
        return source;
    }

    /// <summary>Runs <paramref name="body"/>; <paramref name="resume"/> tells a cancelled run how to continue.</summary>
    public static int Run(Func<int> body, string? resume = null)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsInputError(e))
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException e)
        {
            Console.Error.WriteLine($"Cancelled. {e.Message}{(resume is null ? "" : $" {resume}")}");
            return 130;
        }
    }

    /// <summary>
    /// Whether <paramref name="e"/> is the input's fault, said in one line: bad files and folders, and the argument and
    /// invalid-operation errors this project throws on purpose (a diverged run, a batch larger than the data). The same
    /// two types thrown inside .NET or a dependency (a query over an empty sequence, an index out of range) are bugs:
    /// they reach the runtime with their stack trace.
    /// </summary>
    internal static bool IsInputError(Exception e) =>
        e is ImageDataException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException
        || (e is ArgumentException or InvalidOperationException && ThrownByThisProject(e));

    private static readonly System.Reflection.Assembly[] OwnAssemblies =
        [typeof(CommandRunner).Assembly, typeof(ImageStore).Assembly, typeof(MLNet.Contrastive.Cluster.EmbeddingJobs).Assembly];

    /// <summary>The frame that threw, past .NET's own throw helpers (ArgumentNullException.ThrowIfNull and kin), is this project's.</summary>
    private static bool ThrownByThisProject(Exception e)
    {
        foreach (var frame in new StackTrace(e).GetFrames())
        {
            var type = frame.GetMethod()?.DeclaringType;
            if (type is null) return false;
            if (typeof(Exception).IsAssignableFrom(type)) continue;
            return OwnAssemblies.Contains(type.Assembly);
        }
        return false;
    }

    /// <summary>
    /// Creates the output folder and checks that files can be written there, before any training: a bad --out
    /// should not cost an epoch.
    /// </summary>
    public static string OutputFolder(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
            var probe = Path.Combine(path, $".write-test-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new ArgumentException($"--out {path}: cannot write there ({e.Message.TrimEnd('.')}).", e);
        }
    }

    /// <summary>Peak resident memory of this process (VmHWM on Linux).</summary>
    public static string PeakMemory()
    {
        using var process = Process.GetCurrentProcess();
        return $"{process.PeakWorkingSet64 / (1024.0 * 1024 * 1024):F2} GiB";
    }
}
