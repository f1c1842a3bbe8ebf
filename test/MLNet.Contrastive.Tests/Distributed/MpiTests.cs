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
        var (single, parallel) = TrainOnOneAndTwo("supervised", steps: 10, batch: 64);
        AssertSameRun(single, parallel, lossTolerance: 1e-5);
    }

    [TestCase("simclr")]
    [TestCase("vicreg")]
    public void BatchCoupledLossesOnTwoRanksTrainTheGlobalBatchsObjective(string method)
    {
        // NT-Xent couples the whole batch (every other view is a negative), VICReg its statistics, and the small ResNet
        // and the head normalise by batch statistics: only the gathered embeddings and synchronised batch norm make 2 × 64
        // train as 1 × 128. (Barlow Twins too, but its sum of squared correlations magnifies float rounding: the first
        // loss agrees within 1e-5, twenty steps part by 8e-4 even at a tenth of the rate; docs/scale.md.) Float
        // rounding (sums in another order, a batch norm backward that cancels) parts the runs by about 1e-4 over 20 steps;
        // DataParallelMathTests shows the same computation exact in float64.
        var (single, parallel) = TrainOnOneAndTwo(method, steps: 20, batch: 128);
        AssertSameRun(single, parallel, lossTolerance: 3e-4);
    }

    [Test]
    public void ByolOnTwoRanksWithSynchronisedBatchNormTrainsLikeOneProcess()
    {
        // BYOL's loss is per image, but its encoder, projector and predictor normalise by batch statistics (the target's too).
        var (single, parallel) = TrainOnOneAndTwo("byol", steps: 20, batch: 128);
        AssertSameRun(single, parallel, lossTolerance: 3e-4);
    }

    [TestCase("moco", 20)]
    [TestCase("dino", 20)]
    [TestCase("swav", 20)]
    [TestCase("ibot", 20)]
    [TestCase("nnclr", 3)]
    public void MethodsWithStateOnTwoRanksKeepOneProcesssState(string method, int steps)
    {
        // MoCo's queue and NNCLR's support set take the global batch's keys and projections (gathered, in one process's
        // order), DINO's centre the global batch's mean, SwAV's Sinkhorn every rank's scores and its queue every rank's
        // embeddings, iBOT's patch centre the mean over every rank's masked patches (random per-image masks, drawn as one
        // process draws them): the queues, the support set and the centres — in the state compared — stay one process's,
        // and so do the losses that read them. NNCLR's nearest neighbour is an argmax over near-ties while the projections
        // are still alike: float rounding flips one by step 4 and the runs part, so its case stops at 3 steps (the support
        // set filled at step 1 is read at steps 2 and 3; a rank's own half would be another support set from step 2).
        var (single, parallel) = TrainOnOneAndTwo(method, steps, batch: 128);
        AssertSameRun(single, parallel, lossTolerance: 3e-4);
    }

    [Test]
    public void DistillationsMixupOnTwoRanksPairsTheViewsOfOneProcess()
    {
        // Mixup mixes each view with a partner from a permutation of the whole batch: over two ranks the permutation is
        // drawn over the global batch as one process draws it and the partners gathered from both ranks, so 2 × 64 trains
        // as 1 × 128 (each rank pairing within its own half would be another run from step 1). The teacher is an ONNX model
        // (ONNX Runtime, the global target) of a seeded random small ResNet.
        var (single, parallel) = TrainOnOneAndTwo("distill", steps: 10, batch: 128);
        AssertSameRun(single, parallel, lossTolerance: 3e-4);
    }

    [TestCase("simclr", 20)]
    [TestCase("byol", 20)]
    [TestCase("moco", 20)]
    [TestCase("nce", 10)]
    [TestCase("jigsaw", 10)]
    [TestCase("ijepa", 10)]
    public void WithRandomViewsTwoRanksDrawTheViewsOfOneProcess(string method, int steps)
    {
        // The default recipe (random crops, flips, contrast and brightness, noise): every rank draws from the run's
        // generator what one process at the whole batch draws and keeps its slice (SampleDraws), so 2 × 64 still trains
        // as 1 × 128. (Before, each rank drew its own views from its own seed: other views, another run.) So are the draws
        // over the batch rather than per view: MoCo's shuffled key groups (the permutation of the global batch's keys, each
        // group normalised over both ranks' members), NCE's noise samples (over the global batch's gathered rows), the
        // jigsaw's tile offsets and permutations, I-JEPA's block masks (one block size per batch, contexts cut to the
        // batch's smallest); drawn per rank, the runs part from step 1.
        var (single, parallel) = TrainOnOneAndTwo(method, steps, batch: 128, "--views");
        AssertSameRun(single, parallel, lossTolerance: 3e-4);
    }

    [Test]
    public void WithoutSynchronisedBatchNormTwoRanksTrainAnotherObjective()
    {
        // The control of the two tests above: each rank normalising its own half gives another loss from the first step.
        var (single, parallel) = TrainOnOneAndTwo("simclr", steps: 1, batch: 128, "--no-sync-bn");
        // (Synchronised, the first losses agree within about 1e-6 relative; each rank on its own, about 6e-4.)
        Assert.That(Math.Abs(parallel.Losses[0] - single.Losses[0]), Is.GreaterThan(1e-4 * Math.Abs(single.Losses[0])));
    }

    /// <summary>A run's loss per step and its float32 state: each tensor's name and values, in state-dict order.</summary>
    private sealed record RunResult(double[] Losses, List<(string Name, float[] Values)> State);

    /// <summary>The ranks program's short run of <paramref name="method"/> in one process at <paramref name="batch"/> and on two ranks at half of it each.</summary>
    private static (RunResult Single, RunResult Parallel) TrainOnOneAndTwo(string method, int steps, int batch, params string[] more)
    {
        using var one = TestData.NewFolder();
        using var two = TestData.NewFolder();
        string[] common = ["train", "", TestData.TrainImages, TestData.TrainLabels, steps.ToString(), batch.ToString(), "--method", method, .. more];
        Launch(0, [.. common.Select((a, i) => i == 1 ? one.Path : a)]);
        Launch(2, [.. common.Select((a, i) => i == 1 ? two.Path : a), "--distributed"]);
        Assert.That(Losses(two["rank1.txt"]), Is.EqualTo(Losses(two["rank0.txt"])), "every rank reports the global batch's loss");
        // Without synchronised batch norm each rank's running statistics follow its own half.
        if (!more.Contains("--no-sync-bn"))
            Assert.That(File.ReadAllBytes(two["rank1.bin"]), Is.EqualTo(File.ReadAllBytes(two["rank0.bin"])), "the ranks' states differ");
        return (Read(one, 0), Read(two, 0));

        static double[] Losses(string file) => File.ReadAllLines(file).Select(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();
        static RunResult Read(TestData.TempFolder folder, int rank)
        {
            var bytes = File.ReadAllBytes(folder[$"rank{rank}.bin"]);
            var values = new float[bytes.Length / sizeof(float)];
            Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
            var state = new List<(string, float[])>();
            var offset = 0;
            foreach (var line in File.ReadAllLines(folder[$"rank{rank}.names"]))
            {
                var (name, count) = (line[..line.LastIndexOf(' ')], int.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
                state.Add((name, values[offset..(offset + count)]));
                offset += count;
            }
            Assert.That(offset, Is.EqualTo(values.Length), "the names cover the state");
            return new RunResult(Losses(folder[$"rank{rank}.txt"]), state);
        }
    }

    /// <summary>
    /// Every step's loss within <paramref name="lossTolerance"/> (relative), every weight within 1e-4 and every running
    /// statistic and the methods' queues within 2e-3 (batch statistics' float rounding); and the ranks' states identical.
    /// </summary>
    private static void AssertSameRun(RunResult single, RunResult parallel, double lossTolerance)
    {
        Assert.That(parallel.Losses, Has.Length.EqualTo(single.Losses.Length));
        for (var i = 0; i < single.Losses.Length; i++)
            Assert.That(parallel.Losses[i], Is.EqualTo(single.Losses[i]).Within(lossTolerance * Math.Abs(single.Losses[i])), $"step {i + 1}");
        Assert.That(parallel.State.Select(s => s.Name), Is.EqualTo(single.State.Select(s => s.Name)));
        for (var t = 0; t < single.State.Count; t++)
        {
            var (name, expected) = single.State[t];
            // Running statistics average the batch statistics' float rounding over the steps; NNCLR's support set and the
            // queues hold outputs of a head with batch norm, whose normalisation magnifies it (SwAV's queue 3e-4 after 20
            // steps; a queue of one rank's own rows would be another set of rows altogether).
            var tolerance = name.Contains("running_", StringComparison.Ordinal) || name is "support" or "queue" ? 2e-3 : 1e-4;
            Assert.That(expected.Zip(parallel.State[t].Values, (x, y) => Math.Abs(x - y)).Max(), Is.LessThan(tolerance), name);
        }
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
        Assert.That(output, Does.Contain("5 steps done by 2 processes; continuing on 3, 400 images of each global batch of 1200 per process.")
            .And.Contain("Data-parallel over 3 MPI ranks: 400 images per rank per step."));
        var steps = TrainingHistory.Load(new RunFolder(folder.Path).History).Steps;
        Assert.That(steps.Select(s => s.Step), Is.EqualTo(Enumerable.Range(1, 10)));
    }

    [Test]
    public void ARankKilledMidRunIsRelaunchedFromTheCheckpointAndTheRunCompletes()
    {
        // `pretrain --ranks 2 --restarts 1` launches mpiexec itself; rank 1 is killed once the first epoch's checkpoint is
        // on disk, mpiexec ends the job, and the launcher runs it again with --resume: 3 epochs of 6 steps, each step once.
        using var folder = TestData.NewFolder();
        var start = new ProcessStartInfo("dotnet", [CliPath(), "pretrain", "--data", TestData.TrainImages, "--threads", "1", "--out", folder.Path,
            "--epochs", "3", "--batch-size", "1000", "--ranks", "2", "--restarts", "1"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var launcher = Process.Start(start)!;
        var output = launcher.StandardOutput.ReadToEndAsync();
        var errors = launcher.StandardError.ReadToEndAsync();
        try
        {
            var checkpoint = new RunFolder(folder.Path).Checkpoint;
            var clock = Stopwatch.StartNew();
            while (!File.Exists(checkpoint) && !launcher.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(50);
            Assert.That(checkpoint, Does.Exist, "no checkpoint after the first epoch");
            var rank1 = RankProcess(folder.Path, 1);
            Assert.That(rank1, Is.Not.Null, "rank 1's process was not found");
            rank1!.Kill(); // SIGKILL
            Assert.That(launcher.WaitForExit(TimeSpan.FromMinutes(4)), Is.True, "the relaunched job did not finish in 4 minutes");
        }
        finally
        {
            if (!launcher.HasExited) launcher.Kill(entireProcessTree: true);
        }
        var said = output.Result + errors.Result;
        Assert.That(launcher.ExitCode, Is.Zero, said);
        Assert.That(said, Does.Contain("relaunching from the last checkpoint (restart 1 of 1)"));
        var steps = TrainingHistory.Load(new RunFolder(folder.Path).History).Steps;
        Assert.That(steps.Select(s => s.Step), Is.EqualTo(Enumerable.Range(1, 18)));
    }

    /// <summary>The process of rank <paramref name="rank"/> (MPICH's PMI_RANK) whose command line names <paramref name="folder"/>.</summary>
    private static Process? RankProcess(string folder, int rank)
    {
        foreach (var directory in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid)) continue;
            try
            {
                var environment = File.ReadAllText(Path.Combine(directory, "environ")).Split('\0');
                var commandLine = File.ReadAllText(Path.Combine(directory, "cmdline")).Split('\0');
                if (environment.Contains($"PMI_RANK={rank}") && commandLine.Contains(folder)) return Process.GetProcessById(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // A process that ended meanwhile, or another user's.
            }
        }
        return null;
    }

    private static string CliPath()
    {
        var configuration = new DirectoryInfo(TestContext.CurrentContext.TestDirectory).Parent!.Name;
        return Path.Combine(TestData.RepositoryRoot, "src", "MLNet.Contrastive.Cli", "bin", configuration, "net10.0", "mlnet-contrastive.dll");
    }

    [Test]
    public void ARankThatStallsIsReportedByTheRanksWaitingForItAndTheJobEnds()
    {
        using var folder = TestData.NewFolder();
        var clock = Stopwatch.StartNew();
        var (exitCode, output) = Run(2, "stall", folder.Path);
        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(output, Does.Contain("Rank 0 of 2 waited 2 s in MPI_Allreduce for the other ranks").And.Not.Contain("Rank 1 of 2 waited"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), "the job should end soon after the timeout, not when the stalled rank wakes");
    }

    /// <summary>`pretrain --distributed` of the CLI on the sample's 6,000 images, 1 thread per rank; asserts success and returns the output.</summary>
    private static string Pretrain(int ranks, string run, params string[] more)
    {
        var (exitCode, output) = Run(ranks, CliPath(), ["pretrain", "--data", TestData.TrainImages, "--threads", "1", "--out", run, "--distributed", .. more]);
        Assert.That(exitCode, Is.Zero, output);
        return output;
    }

    [Test]
    public void AGatherBeyondOneMpiCallIsRefusedByName()
    {
        Assert.That(() => MpiDataParallel.CheckGatherSize(1L << 30, 2), Throws.ArgumentException.With.Message.Contains("exceeds one MPI call's"));
        Assert.That(() => MpiDataParallel.CheckGatherSize(1 << 20, 2), Throws.Nothing);
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
