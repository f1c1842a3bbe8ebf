using System.Diagnostics;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>Runs a command body, turning input errors into one clear line on stderr and exit code 1.</summary>
internal static class CommandRunner
{
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is ImageDataException or InvalidDataException or ArgumentException or FileNotFoundException
                                      or DirectoryNotFoundException or UnauthorizedAccessException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("Cancelled; the last checkpoint is kept.");
            return 130;
        }
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
