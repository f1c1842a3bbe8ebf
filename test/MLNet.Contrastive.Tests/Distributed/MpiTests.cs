using System.Diagnostics;
using System.Globalization;
using MLNet.Contrastive.Distributed;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Distributed;

/// <summary>
/// The MPI binding and data-parallel training, on ranks that MPICH's mpiexec starts as child processes running
/// test/MLNet.Contrastive.Distributed.Ranks (each launch has a time limit and is killed with its children past it).
/// </summary>
public class MpiTests
{
    private const string Mpiexec = "/usr/bin/mpiexec.mpich";

    [Test]
    public void CollectivesOnTwoRanksGiveTheHandComputedResults()
    {
        using var folder = TestData.NewFolder();
        Launch(2, "collectives", folder.Path);
        foreach (var rank in new[] { 0, 1 })
        {
            // Rank r sends [r + 1, 2(r + 1) + 0.5, −3r]: sums [1 + 2, 2.5 + 4.5, 0 − 3]; gathers [10r, 10r + 1] by rank;
            // rank 0 broadcasts [7, 8]; a buffer of more than one bucket of r + 1 sums to 3 everywhere.
            var lines = File.ReadAllLines(folder[$"rank{rank}.txt"]);
            Assert.That(lines, Is.EqualTo(new[]
            {
                "size 2", "allreduce 3 7 -3", "allgather 0 1 10 11", "broadcast 7 8", $"large-wrong 0 of {MpiWorld.BucketFloats + 3}",
            }), $"rank {rank}");
        }
    }

    [Test]
    public void TwoRanksAtHalfTheBatchTrainLikeOneProcessAtTheWholeBatch()
    {
        // A loss without batch coupling (layer norm, a linear classifier, views without randomness): the mean of the two
        // ranks' gradients over 32 images each is the gradient over 64 — up to the order of float additions.
        const int steps = 10, batch = 64;
        using var one = TestData.NewFolder();
        using var two = TestData.NewFolder();
        Launch(0, "train", one.Path, TestData.TrainImages, TestData.TrainLabels, steps.ToString(), batch.ToString());
        Launch(2, "train", two.Path, TestData.TrainImages, TestData.TrainLabels, steps.ToString(), batch.ToString(), "--distributed");

        Assert.That(File.ReadAllBytes(two["rank1.bin"]), Is.EqualTo(File.ReadAllBytes(two["rank0.bin"])), "the ranks' weights differ");
        double[] Losses(string file) => File.ReadAllLines(file).Select(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();
        var (single, parallel) = (Losses(one["rank0.txt"]), Losses(two["rank0.txt"]));
        Assert.That(parallel, Has.Length.EqualTo(steps));
        Assert.That(Losses(two["rank1.txt"]), Is.EqualTo(parallel), "every rank reports the global batch's loss");
        for (var i = 0; i < steps; i++)
            Assert.That(parallel[i], Is.EqualTo(single[i]).Within(1e-5 * Math.Abs(single[i])), $"step {i + 1}");
        float[] Weights(string file)
        {
            var bytes = File.ReadAllBytes(file);
            var values = new float[bytes.Length / sizeof(float)];
            Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
            return values;
        }
        var (a, b) = (Weights(one["rank0.bin"]), Weights(two["rank0.bin"]));
        Assert.That(b, Has.Length.EqualTo(a.Length));
        Assert.That(a.Zip(b, (x, y) => Math.Abs(x - y)).Max(), Is.LessThan(1e-4));
    }

    [Test]
    public void PretrainDistributedOnTwoRanksTrainsTheGlobalBatchAndRank0AloneReports()
    {
        using var folder = TestData.NewFolder();
        var output = Pretrain(2, folder.Path, "--epochs", "1", "--batch-size", "1000");
        Assert.That(output, Does.Contain("Data-parallel over 2 MPI ranks: 500 images per rank per step."));
        Assert.That(output.Split("Done: ").Length - 1, Is.EqualTo(1), "rank 0 alone prints the summary: " + output);
        // 6,000 images at a global batch of 1,000: 6 steps.
        Assert.That(TrainingHistory.Load(new RunFolder(folder.Path).History).Steps, Has.Count.EqualTo(6));
        Assert.That(new RunFolder(folder.Path).Checkpoint, Does.Exist);
        Assert.That(new RunFolder(folder.Path).Encoder, Does.Exist);
    }

    [Test]
    public void ATimeBudgetStopsEveryRankAtTheSameStep()
    {
        // Ranks that stopped at different steps would leave one waiting in an allreduce: the launch would time out.
        using var folder = TestData.NewFolder();
        var output = Pretrain(2, folder.Path, "--minutes", "0.05", "--batch-size", "200");
        Assert.That(output, Does.Contain("Done: "));
        Assert.That(TrainingHistory.Load(new RunFolder(folder.Path).History).Steps, Is.Not.Empty);
    }

    [Test]
    public void ARunOfTwoRanksResumesOnThree()
    {
        // Batches are sliced from the global order, so another world size continues the same run.
        using var folder = TestData.NewFolder();
        Pretrain(2, folder.Path, "--epochs", "1", "--batch-size", "1200");
        var output = Pretrain(3, folder.Path, "--epochs", "2", "--batch-size", "1200", "--resume");
        Assert.That(output, Does.Contain("5 steps done").And.Contain("Data-parallel over 3 MPI ranks: 400 images per rank per step."));
        var steps = TrainingHistory.Load(new RunFolder(folder.Path).History).Steps;
        Assert.That(steps.Select(s => s.Step), Is.EqualTo(Enumerable.Range(1, 10)));
    }

    /// <summary>`pretrain --distributed` of the CLI on the sample's 6,000 images, 1 thread per rank; asserts success and returns the output.</summary>
    private static string Pretrain(int ranks, string run, params string[] more)
    {
        var configuration = new DirectoryInfo(TestContext.CurrentContext.TestDirectory).Parent!.Name;
        var cli = Path.Combine(TestData.RepositoryRoot, "src", "MLNet.Contrastive.Cli", "bin", configuration, "net10.0", "mlnet-contrastive.dll");
        var (exitCode, output) = Run(ranks, cli, ["pretrain", "--data", TestData.TrainImages, "--threads", "1", "--out", run, "--distributed", .. more]);
        Assert.That(exitCode, Is.Zero, output);
        return output;
    }

    [Test]
    public void AProcessNotLaunchedByMpiexecIsToldHowToLaunch()
    {
        Assume.That(Environment.GetEnvironmentVariable("PMI_SIZE"), Is.Null);
        var error = Assert.Throws<InvalidOperationException>(() => MpiWorld.Start())!;
        Assert.That(error.Message, Does.Contain("not launched by mpiexec").And.Contain("mpiexec -n N"));
    }

    [Test]
    public void AWorldOfOneRankIsRefusedWithAClearMessage()
    {
        using var folder = TestData.NewFolder();
        var (exitCode, output) = Run(1, "train", folder.Path, TestData.TrainImages, TestData.TrainLabels, "1", "8", "--distributed");
        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(output, Does.Contain("the MPI world has 1 rank").And.Contain("mpiexec -n N"));
    }

    /// <summary>Runs the ranks program under mpiexec with <paramref name="ranks"/> ranks (0: a plain process) and asserts that it succeeds.</summary>
    private static void Launch(int ranks, params string[] args)
    {
        var (exitCode, output) = Run(ranks, args);
        Assert.That(exitCode, Is.Zero, output);
    }

    private static (int ExitCode, string Output) Run(int ranks, params string[] args)
    {
        var configuration = new DirectoryInfo(TestContext.CurrentContext.TestDirectory).Parent!.Name;
        return Run(ranks, Path.Combine(TestData.RepositoryRoot, "test", "MLNet.Contrastive.Distributed.Ranks", "bin", configuration, "net10.0",
            "MLNet.Contrastive.Distributed.Ranks.dll"), args);
    }

    /// <summary>Runs the .NET program <paramref name="program"/> on <paramref name="ranks"/> MPI ranks (0: a plain process), killed past 3 minutes.</summary>
    private static (int ExitCode, string Output) Run(int ranks, string program, string[] args)
    {
        Assert.That(Mpiexec, Does.Exist, "The distributed tests need MPICH: apt-get install -y mpich");
        Assert.That(program, Does.Exist);
        var start = ranks == 0
            ? new ProcessStartInfo("dotnet", [program, .. args])
            : new ProcessStartInfo(Mpiexec, ["-n", ranks.ToString(), "dotnet", program, .. args]);
        (start.RedirectStandardOutput, start.RedirectStandardError) = (true, true);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"mpiexec -n {ranks} {string.Join(' ', args)} did not finish in 3 minutes (killed).");
        }
        process.WaitForExit();
        return (process.ExitCode, output.Result + errors.Result);
    }
}
