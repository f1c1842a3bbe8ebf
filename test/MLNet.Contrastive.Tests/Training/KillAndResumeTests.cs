using System.Diagnostics;
using System.IO.Compression;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Training;

/// <summary>
/// Fault injection with real processes: <c>mlnet-contrastive pretrain</c> is killed (SIGKILL) while it trains and
/// while it writes its checkpoint, then resumed; the resumed run must give the uninterrupted run's losses.
/// </summary>
[NonParallelizable]
public class KillAndResumeTests
{
    private const int Epochs = 5;
    private TestData.TempFolder folder = null!;
    private string data = null!;
    private List<StepRecord> uninterrupted = null!;

    [OneTimeSetUp]
    public void RunUninterrupted()
    {
        folder = TestData.NewFolder();
        data = WriteFirstImages(folder["train-1000.idx"], 1000);
        var run = folder["uninterrupted"];
        using (var process = Pretrain(run)) Finish(process);
        uninterrupted = History(run);
        Assert.That(uninterrupted, Has.Count.EqualTo(Epochs * 4));
    }

    [OneTimeTearDown]
    public void RemoveFolder() => folder.Dispose();

    [Test]
    public void ARunKilledWhileTrainingResumesToTheUninterruptedLosses()
    {
        var run = folder["killed-training"];
        var checkpoint = new RunFolder(run).Checkpoint;
        using (var process = Pretrain(run))
        {
            WaitFor(process, () => File.Exists(checkpoint));
            // Somewhere inside the second or third epoch (an epoch here takes about a second).
            Thread.Sleep(300 + new Random(7).Next(700));
            Kill(process);
        }
        var before = Checkpoint.ReadInfo(checkpoint).GlobalStep;
        Assert.That(before, Is.GreaterThan(0).And.LessThan(Epochs * 4), "the kill came before the run finished");
        TestContext.Out.WriteLine($"Killed after {before} of {Epochs * 4} steps had been checkpointed.");

        using (var resumed = Pretrain(run, "--resume")) Finish(resumed);
        AssertSameLosses(History(run));
    }

    [Test]
    public void ARunKilledWhileWritingItsCheckpointResumesFromTheOneBefore()
    {
        var run = folder["killed-writing"];
        var checkpoint = new RunFolder(run).Checkpoint;
        // The kill is sent once the temporary file holds 1 MiB of the checkpoint's ~5 MiB; it landed inside the
        // write when the temporary file is still there afterwards. A write can finish between two polls: try again.
        string? leftOver = null;
        var attempt = 0;
        for (; attempt < 5 && leftOver is null; attempt++)
        {
            if (Directory.Exists(run)) Directory.Delete(run, recursive: true);
            using var process = Pretrain(run);
            WaitFor(process, () => File.Exists(checkpoint));
            var temporary = Path.Combine(run, $".{RunFolder.CheckpointFile}.{process.Id}.tmp");
            WaitFor(process, () => Length(temporary) >= 1 << 20, pollMilliseconds: 0);
            Kill(process);
            if (File.Exists(temporary)) leftOver = temporary;
        }
        Assert.That(leftOver, Is.Not.Null, "no kill landed inside a checkpoint write in 5 attempts");
        TestContext.Out.WriteLine($"A kill landed inside the checkpoint write at attempt {attempt}; it left {new FileInfo(leftOver!).Length:N0} bytes.");
        Assert.That(Checkpoint.ReadInfo(checkpoint).GlobalStep, Is.Positive.And.LessThan(Epochs * 4).And.Matches<int>(step => step % 4 == 0),
            "the checkpoint of the epoch before is intact");

        using (var resumed = Pretrain(run, "--resume")) Finish(resumed);
        AssertSameLosses(History(run));
        Assert.That(File.Exists(leftOver), Is.False, "the killed writer's temporary file is removed");
    }

    private void AssertSameLosses(List<StepRecord> resumed)
    {
        Assert.That(resumed.Select(s => s.Step), Is.EqualTo(uninterrupted.Select(s => s.Step)));
        Assert.That(resumed.Select(s => s.Loss), Is.EqualTo(uninterrupted.Select(s => s.Loss)).Within(1e-4));
    }

    private static long Length(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (FileNotFoundException)
        {
            return -1;
        }
    }

    private static List<StepRecord> History(string run) => TrainingHistory.Load(new RunFolder(run).History).Steps;

    /// <summary>The CLI built next to this test project (the test project references it, so it is built first).</summary>
    private Process Pretrain(string run, params string[] more)
    {
        var configuration = new DirectoryInfo(TestContext.CurrentContext.TestDirectory).Parent!.Name;
        var cli = Path.Combine(TestData.RepositoryRoot, "src", "MLNet.Contrastive.Cli", "bin", configuration, "net10.0", "mlnet-contrastive.dll");
        Assert.That(cli, Does.Exist);
        var start = new ProcessStartInfo("dotnet", [cli, "pretrain", "--data", data, "--epochs", Epochs.ToString(), "--batch-size", "250",
            "--seed", "3", "--out", run, .. more])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Finish(Process process)
    {
        Assert.That(process.WaitForExit(TimeSpan.FromMinutes(3)), Is.True, "pretrain did not finish in 3 minutes");
        Assert.That(process.ExitCode, Is.Zero);
    }

    private static void Kill(Process process)
    {
        Assert.That(process.HasExited, Is.False, "the run ended before the kill");
        process.Kill();
        process.WaitForExit();
    }

    private static void WaitFor(Process process, Func<bool> condition, int pollMilliseconds = 10)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.That(process.HasExited, Is.False, "the run ended before the awaited moment");
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromMinutes(2)), "timed out");
            if (pollMilliseconds > 0) Thread.Sleep(pollMilliseconds);
        }
    }

    /// <summary>The sample's first <paramref name="count"/> training images as an IDX file (4 steps of 250 per epoch).</summary>
    private static string WriteFirstImages(string path, int count)
    {
        using var gzip = new GZipStream(File.OpenRead(TestData.TrainImages), CompressionMode.Decompress);
        using var bytes = new MemoryStream();
        gzip.CopyTo(bytes);
        var idx = bytes.GetBuffer().AsSpan(0, 16 + count * 28 * 28).ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(4), count);
        File.WriteAllBytes(path, idx);
        return path;
    }
}
