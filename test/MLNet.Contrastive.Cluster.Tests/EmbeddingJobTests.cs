using System.Text.Json;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Onnx;
using Orleans.TestingHost;

namespace MLNet.Contrastive.Cluster.Tests;

/// <summary>Jobs on in-process Orleans clusters whose job and shard state and reminders are in a real Redis.</summary>
public class EmbeddingJobTests
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(4);

    /// <summary>A cluster of <paramref name="silos"/>; clusters given the same <paramref name="serviceId"/> share the stored state.</summary>
    private static async Task<InProcessTestCluster> StartCluster(short silos, string? serviceId = null)
    {
        ClusterHosting.RedriveInterval = TimeSpan.FromSeconds(2);
        var builder = new InProcessTestClusterBuilder(silos);
        if (serviceId is not null) builder.Options.ServiceId = serviceId;
        builder.ConfigureSilo((_, silo) => silo.AddContrastiveJobs(ClusterFixture.Redis, threads: 1));
        var cluster = builder.Build();
        using var start = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await cluster.DeployAsync(start.Token);
        return cluster;
    }

    /// <summary>The single-process embeddings of a folder's images, by path.</summary>
    internal static Dictionary<string, float[]> Reference(string folder)
    {
        using var embedder = new ImageEmbedder(ClusterFixture.Encoder, new ImageEmbedderOptions { Log = _ => { } });
        var store = ImageStore.Load(folder);
        var embeddings = embedder.Embed(store);
        return Enumerable.Range(0, store.Count).ToDictionary(i => Path.GetFullPath(store.Sources[i]), i => embeddings.Row(i).ToArray());
    }

    /// <summary>Every row of the job's shard files, as the manifest lists them.</summary>
    internal static (List<EmbeddingRow> Rows, JsonDocument Manifest) ReadOutput(string output)
    {
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, ShardLayout.ManifestFile)));
        var rows = manifest.RootElement.GetProperty("shards").EnumerateArray()
            .SelectMany(s => ShardOutput.Read(Path.Combine(output, s.GetProperty("file").GetString()!))).ToList();
        return (rows, manifest);
    }

    /// <summary>Each image of <paramref name="folder"/> (default: the fixture's) in exactly one row, equal to the single-process embedder.</summary>
    internal static void AssertEachImageOnceAndEqual(List<EmbeddingRow> rows, string? folder = null)
    {
        var reference = Reference(folder ?? ClusterFixture.Images);
        Assert.That(rows.Select(r => r.Path), Is.Unique, "no image is written twice");
        Assert.That(rows.Select(r => r.Path), Is.EquivalentTo(reference.Keys), "every image is written");
        var largest = rows.Max(r => r.Embedding.Zip(reference[r.Path], (a, b) => Math.Abs(a - b)).Max());
        Assert.That(largest, Is.LessThanOrEqualTo(1e-5f), $"max |cluster − single process| = {largest:G3}");
    }

    [Test]
    public async Task TwoSilosEmbedEachImageOnceAsTheSingleProcessEmbedderAndListUnreadableImages()
    {
        await using var cluster = await StartCluster(2);
        var output = Path.Combine(ClusterFixture.Folder, "out-two-silos");
        var list = Path.Combine(ClusterFixture.Folder, "two-silos.txt");
        var broken = Path.Combine(ClusterFixture.Folder, "broken.png");
        await File.WriteAllTextAsync(broken, "not a PNG");
        // A list file: the images twice over (each must still be embedded once) and one unreadable file.
        var images = ImageDecoder.ImageFilesUnder(ClusterFixture.Images);
        await File.WriteAllLinesAsync(list, images.Concat(images.Take(10)).Append(broken));
        var jobs = new EmbeddingJobs(cluster.Client);

        var id = await jobs.SubmitAsync(new EmbeddingJobOptions { Model = ClusterFixture.Encoder, Data = list, Output = output, ShardSize = 32, BatchSize = 16 });
        using var timeout = new CancellationTokenSource(JobTimeout);
        var status = await jobs.WaitAsync(id, s => TestContext.Progress.WriteLine(s), cancellation: timeout.Token);

        Assert.That(status.State, Is.EqualTo(JobState.Completed), status.ToString());
        Assert.That((status.Shards, status.Rows, status.Unreadable), Is.EqualTo((10, ClusterFixture.ImageCount, 1)));
        var (rows, manifest) = ReadOutput(output);
        AssertEachImageOnceAndEqual(rows);
        var unreadable = manifest.RootElement.GetProperty("unreadable").EnumerateArray().Select(u => u.GetString()).ToList();
        Assert.That(unreadable, Has.Count.EqualTo(1).And.Some.Contains("broken.png"));
        Assert.That(Directory.EnumerateFiles(output, "*.tmp*", SearchOption.AllDirectories), Is.Empty, "no temporary files are left");
    }

    [Test]
    public async Task ASiloKilledMidJobLosesNoImageAndDuplicatesNone()
    {
        await using var cluster = await StartCluster(3);
        var output = Path.Combine(ClusterFixture.Folder, "out-killed");
        var jobs = new EmbeddingJobs(cluster.Client);
        var id = await jobs.SubmitAsync(new EmbeddingJobOptions
        {
            // One image a scorer call: slow enough that the kill lands while shards are in flight.
            Model = ClusterFixture.Encoder, Data = ClusterFixture.Images, Output = output, Format = "csv", ShardSize = 10, BatchSize = 1,
        });
        using var timeout = new CancellationTokenSource(JobTimeout);
        while ((await jobs.StatusAsync(id)).ShardsDone < 3) await Task.Delay(20, timeout.Token);
        // A secondary silo: the test cluster's membership table lives in the first.
        await cluster.KillSiloAsync(cluster.Silos[^1]);
        var atKill = await jobs.StatusAsync(id);
        TestContext.Progress.WriteLine($"killed a silo: {atKill}");
        Assert.That(atKill.State, Is.EqualTo(JobState.Running), "the silo was killed mid-job");

        var status = await jobs.WaitAsync(id, s => TestContext.Progress.WriteLine(s), cancellation: timeout.Token);

        Assert.That(status.State, Is.EqualTo(JobState.Completed), status.ToString());
        Assert.That((status.Shards, status.Rows), Is.EqualTo((30, ClusterFixture.ImageCount)));
        AssertEachImageOnceAndEqual(ReadOutput(output).Rows);
    }

    [Test]
    public async Task TheWholeClusterStoppedMidJobResumesFromItsStoredState()
    {
        var serviceId = "restart-" + Guid.NewGuid().ToString("N")[..8];
        var output = Path.Combine(ClusterFixture.Folder, "out-restart");
        using var timeout = new CancellationTokenSource(JobTimeout);
        string id;
        JobStatus before;
        await using (var cluster = await StartCluster(2, serviceId))
        {
            var jobs = new EmbeddingJobs(cluster.Client);
            id = await jobs.SubmitAsync(new EmbeddingJobOptions { Model = ClusterFixture.Encoder, Data = ClusterFixture.Images, Output = output, ShardSize = 5, BatchSize = 1 });
            while ((await jobs.StatusAsync(id)).ShardsDone < 3) await Task.Delay(10, timeout.Token);
            foreach (var silo in cluster.Silos.ToList()) await cluster.KillSiloAsync(silo);
        }
        await using (var cluster = await StartCluster(2, serviceId))
        {
            var jobs = new EmbeddingJobs(cluster.Client);
            before = await jobs.StatusAsync(id);
            TestContext.Progress.WriteLine($"after the restart: {before}");
            var status = await jobs.WaitAsync(id, s => TestContext.Progress.WriteLine(s), cancellation: timeout.Token);

            Assert.That(before.State, Is.EqualTo(JobState.Running), "the job was stopped mid-way");
            Assert.That(before.ShardsDone, Is.GreaterThanOrEqualTo(3), "the shards written before the stop are remembered");
            Assert.That((status.State, status.Rows), Is.EqualTo((JobState.Completed, (long)ClusterFixture.ImageCount)), status.ToString());
            AssertEachImageOnceAndEqual(ReadOutput(output).Rows);
        }
    }

    [Test]
    public async Task CancellingAJobStopsItsRunningShardsBeforeTheirNextBatch()
    {
        await using var cluster = await StartCluster(2);
        var output = Path.Combine(ClusterFixture.Folder, "out-cancelled");
        var jobs = new EmbeddingJobs(cluster.Client);
        // Two shards of 150 images, one image a scorer call: both start at once and take a while.
        var id = await jobs.SubmitAsync(new EmbeddingJobOptions
        {
            Model = ClusterFixture.Encoder, Data = ClusterFixture.Images, Output = output, Format = "csv", ShardSize = 150, BatchSize = 1,
        });
        await jobs.CancelAsync(id);
        // Uncancelled, both shards write their files within a second or two; stopped, neither does.
        await Task.Delay(TimeSpan.FromSeconds(5));
        var status = await jobs.StatusAsync(id);
        Assert.That(status.State, Is.EqualTo(JobState.Cancelled), status.ToString());
        Assert.That(Directory.EnumerateFiles(output, "shard-*.csv"), Is.Empty, "a running shard went on after the cancel");
        Assert.That(status.ShardsDone, Is.Zero);
    }

    [Test]
    public async Task AShardThatFailsThreeTimesFailsTheJobWithItsMessage()
    {
        await using var cluster = await StartCluster(2);
        var output = Path.Combine(ClusterFixture.Folder, "out-failing");
        var jobs = new EmbeddingJobs(cluster.Client);
        var id = await jobs.SubmitAsync(new EmbeddingJobOptions { Model = ClusterFixture.Encoder, Data = ClusterFixture.Images, Output = output, ShardSize = 5, BatchSize = 1 });
        // The last shard is started long after this: its input list is gone when it reads it, on every attempt.
        File.Delete(ShardLayout.InputList(output, 59));
        using var timeout = new CancellationTokenSource(JobTimeout);

        var status = await jobs.WaitAsync(id, cancellation: timeout.Token);

        Assert.That(status.State, Is.EqualTo(JobState.Failed), status.ToString());
        Assert.That(status.Error, Does.StartWith("shard 59: ").And.Contain("shard-00059.txt"));
        Assert.That(Path.Combine(output, ShardLayout.ManifestFile), Does.Not.Exist);
    }

    [Test]
    public async Task AModelThatDoesNotLoadIsRefusedAtSubmit()
    {
        var broken = Path.Combine(ClusterFixture.Folder, "broken.onnx");
        await File.WriteAllTextAsync(broken, "not an ONNX model");
        var jobs = new EmbeddingJobs(null!);
        Assert.That(() => jobs.SubmitAsync(new EmbeddingJobOptions { Model = broken, Data = ClusterFixture.Images, Output = ClusterFixture.Folder }),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("broken.onnx"));
    }

    [Test]
    public void ShardsListEachImageOnceInAStableOrder()
    {
        var images = EmbeddingJobs.ListImages(ClusterFixture.Images);
        Assert.That(images, Has.Count.EqualTo(ClusterFixture.ImageCount).And.Unique.And.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
        Assert.That(images, Has.All.Matches<string>(Path.IsPathFullyQualified));
    }
}
