namespace MLNet.Contrastive.Runtime;

/// <summary>
/// Writes a file whole or not at all: into a temporary file beside it, flushed to disk, then renamed over the target,
/// so a crash or kill never leaves a half-written checkpoint, model or report.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        RemoveStale(folder, Path.GetFileName(path));
    }

    /// <summary>Deletes the temporary files of earlier writers of the same file that were killed mid-write (a live writer's stay).</summary>
    private static void RemoveStale(string folder, string name)
    {
        foreach (var stale in Directory.EnumerateFiles(folder, $".{name}.*.tmp"))
        {
            var pid = Path.GetFileName(stale)[(name.Length + 2)..^4];
            if (int.TryParse(pid, out var id) && id != Environment.ProcessId && !IsRunning(id)) File.Delete(stale);
        }
    }

    private static bool IsRunning(int processId)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            writer.Write(text);
        });

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, stream => stream.Write(bytes));
}
