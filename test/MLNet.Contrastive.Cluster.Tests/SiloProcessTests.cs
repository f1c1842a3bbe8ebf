using System.Diagnostics;

namespace MLNet.Contrastive.Cluster.Tests;

/// <summary>
/// The CLI end to end: three <c>cluster silo</c> processes on the fixture's Redis and a <c>cluster submit --wait</c>
/// client; one silo is killed (SIGKILL) once the first shard file is written, and the job must still write every image once.
/// </summary>
public class SiloProcessTests
{
    private const int Images = 2000;

    internal static string Cli
    {
        get
        {
            var configuration = new DirectoryInfo(TestContext.CurrentContext.TestDirectory).Parent!.Name;
            var root = TestContext.CurrentContext.TestDirectory;
            while (!File.Exists(Path.Combine(root, "MLNet.Contrastive.sln"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("repository root");
            return Path.Combine(root, "src", "MLNet.Contrastive.Cli", "bin", configuration, "net10.0", "mlnet-contrastive.dll");
        }
    }

    /// <summary>Starts the CLI; its output lines go to <paramref name="lines"/> (and the test's progress).</summary>
    internal static Process Start(List<string> lines, params string[] arguments)
    {
        var process = Process.Start(new ProcessStartInfo("dotnet", [Cli, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        void Receive(object _, DataReceivedEventArgs e)
        {
            if (e.Data is null) return;
            lock (lines) lines.Add(e.Data);
        }
        process.OutputDataReceived += Receive;
        process.ErrorDataReceived += Receive;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    internal static void WaitFor(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) Assert.Fail($"timed out waiting for {what}");
            Thread.Sleep(10);
        }
    }

    [Test]
    public void SubmitRefusesABrokenModelBeforeConnecting()
    {
        var broken = Path.Combine(ClusterFixture.Folder, "cli-broken.onnx");
        File.WriteAllText(broken, "not an ONNX model");
        var lines = new List<string>();
        // Port 1: nothing listens there, so the refusal cannot have come from a cluster.
        using var submit = Start(lines, "cluster", "submit", "--redis", "127.0.0.1:1", "--model", broken, "--data", ClusterFixture.Images,
            "--out", Path.Combine(ClusterFixture.Folder, "cli-broken-out"));
        Assert.That(submit.WaitForExit(TimeSpan.FromMinutes(1)), Is.True, "submit did not exit in a minute");
        submit.WaitForExit();
        Assert.That(submit.ExitCode, Is.EqualTo(1));
        lock (lines) Assert.That(lines, Has.Some.StartsWith("error: ").And.Some.Contains("cli-broken.onnx: not a loadable ONNX model"));
    }

    [TestCase("silo", "both")]
    [TestCase("submit", "both")]
    [TestCase("status", "neither")]
    public void AClusterCommandRefusesBothStoresAndNeither(string command, string given)
    {
        string[] store = given == "both" ? ["--redis", "127.0.0.1:1", "--postgres", "Host=127.0.0.1;Port=1"] : [];
        string[] rest = command switch
        {
            "submit" => ["--model", ClusterFixture.Encoder, "--data", ClusterFixture.Images, "--out", Path.Combine(ClusterFixture.Folder, "cli-store-out")],
            "status" => ["job-1"],
            _ => [],
        };
        var lines = new List<string>();
        using var process = Start(lines, ["cluster", command, .. store, .. rest]);
        Assert.That(process.WaitForExit(TimeSpan.FromMinutes(1)), Is.True, $"cluster {command} did not exit in a minute");
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.EqualTo(1));
        var expected = given == "both" ? "error: Both Redis (127.0.0.1:1) and Postgres are set" : "error: Neither Redis (host:port) nor Postgres (a connection string) is set";
        lock (lines) Assert.That(lines, Has.Some.StartsWith(expected), string.Join("\n", lines));
    }

    [Test]
    public void ASiloProcessKilledMidJobLosesNoImageAndDuplicatesNone()
    {
        Assert.That(Cli, Does.Exist);
        var data = Path.Combine(ClusterFixture.Folder, "process-images");
        var output = Path.Combine(ClusterFixture.Folder, "process-out");
        ClusterFixture.WriteImages(data, Images);
        var clusterId = "process-" + Guid.NewGuid().ToString("N")[..8];
        var silos = new List<(Process Process, List<string> Lines)>();
        Process? client = null;
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var lines = new List<string>();
                silos.Add((Start(lines, "cluster", "silo", "--redis", ClusterFixture.Redis, "--cluster-id", clusterId, "--port", $"{ClusterFixture.FreePort()}",
                    "--gateway-port", $"{ClusterFixture.FreePort()}", "--threads", "1"), lines));
            }
            foreach (var (process, lines) in silos)
                WaitFor(() => { lock (lines) return lines.Any(l => l.StartsWith("Silo up")); }, TimeSpan.FromMinutes(1), "a silo to start");

            var clientLines = new List<string>();
            client = Start(clientLines, "cluster", "submit", "--redis", ClusterFixture.Redis, "--cluster-id", clusterId, "--model", ClusterFixture.Encoder,
                "--data", data, "--out", output, "--shard-size", "20", "--batch-size", "10", "--wait");
            WaitFor(() => Directory.Exists(output) && Directory.EnumerateFiles(output, "shard-*.parquet").Any(), TimeSpan.FromMinutes(2), "the first shard");
            silos[^1].Process.Kill();
            silos[^1].Process.WaitForExit(10_000);
            TestContext.Progress.WriteLine($"killed a silo with {Directory.EnumerateFiles(output, "shard-*.parquet").Count()} of 100 shards written");

            var finished = client.WaitForExit(TimeSpan.FromMinutes(4));
            lock (clientLines) TestContext.Progress.WriteLine(string.Join("\n", clientLines));
            Assert.That(finished, Is.True, "the job did not finish in 4 minutes");
            Assert.That(client.ExitCode, Is.Zero);
            EmbeddingJobTests.AssertEachImageOnceAndEqual(EmbeddingJobTests.ReadOutput(output).Rows, data);
        }
        finally
        {
            foreach (var process in silos.Select(s => s.Process).Append(client).OfType<Process>())
            {
                if (!process.HasExited) process.Kill();
                process.WaitForExit(10_000);
                process.Dispose();
            }
        }
    }
}
