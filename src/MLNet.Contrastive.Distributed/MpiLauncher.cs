using System.Diagnostics;

namespace MLNet.Contrastive.Distributed;

/// <summary>
/// torchrun's restarts for an MPI job: runs <c>mpiexec -n N</c> on a command and, when the job fails (a rank that dies
/// makes mpiexec end every rank), runs it again from its last checkpoint, up to a number of restarts. The command must
/// continue from its checkpoint when given <see cref="ResumeFlag"/> (the CLI's <c>pretrain … --resume</c>).
/// </summary>
public static class MpiLauncher
{
    /// <summary>The argument that makes the relaunched command continue from its checkpoint.</summary>
    public const string ResumeFlag = "--resume";

    /// <summary>
    /// Runs <paramref name="command"/> (program, then arguments) on <paramref name="ranks"/> ranks with MPICH's mpiexec,
    /// its output passed through; while it exits with an error and restarts remain, says so on <paramref name="log"/> and
    /// runs it again with <see cref="ResumeFlag"/>. Returns the last exit code (0: the job completed).
    /// </summary>
    public static int Run(int ranks, int restarts, IReadOnlyList<string> command, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(log);
        if (ranks < 2) throw new ArgumentOutOfRangeException(nameof(ranks), ranks, "Data-parallel training needs at least 2 ranks.");
        if (restarts < 0) throw new ArgumentOutOfRangeException(nameof(restarts), restarts, "The number of restarts must be 0 or more.");
        if (command.Count == 0) throw new ArgumentException("The command to launch is empty.", nameof(command));
        var mpiexec = Mpiexec() ?? throw new InvalidOperationException(
            "MPICH's mpiexec (mpiexec.mpich) is not installed: on Debian or Ubuntu, apt-get install mpich.");
        var arguments = command.ToList();
        for (var attempt = 0; ; attempt++)
        {
            var exitCode = RunOnce(mpiexec, ranks, arguments);
            if (exitCode == 0 || attempt == restarts) return exitCode;
            log.WriteLine($"The job on {ranks} ranks failed (mpiexec exit code {exitCode}); relaunching from the last checkpoint (restart {attempt + 1} of {restarts}).");
            if (!arguments.Contains(ResumeFlag)) arguments.Add(ResumeFlag);
        }
    }

    private static int RunOnce(string mpiexec, int ranks, List<string> command)
    {
        var start = new ProcessStartInfo(mpiexec) { UseShellExecute = false };
        foreach (var argument in (string[])["-n", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), .. command]) start.ArgumentList.Add(argument);
        using var job = Process.Start(start) ?? throw new InvalidOperationException($"{mpiexec} could not be started.");
        job.WaitForExit();
        return job.ExitCode;
    }

    /// <summary>MPICH's launcher: Debian's mpiexec.mpich, else an mpiexec on the PATH; null when neither is there.</summary>
    private static string? Mpiexec()
    {
        var path = Environment.GetEnvironmentVariable("PATH")?.Split(Path.PathSeparator) ?? [];
        foreach (var name in new[] { "mpiexec.mpich", "mpiexec" })
            foreach (var folder in path.Append("/usr/bin"))
                if (folder.Length > 0 && File.Exists(Path.Combine(folder, name))) return Path.Combine(folder, name);
        return null;
    }
}
