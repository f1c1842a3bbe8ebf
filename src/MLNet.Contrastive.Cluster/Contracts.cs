using Orleans.Concurrency;

namespace MLNet.Contrastive.Cluster;

/// <summary>What a job embeds and where it writes; fixed at submit time and stored with the job.</summary>
[GenerateSerializer]
public sealed class JobSpec
{
    /// <summary>The encoder (ONNX, input [N, C, H, W], output [N, D]); every silo must see this path.</summary>
    [Id(0)] public string ModelPath { get; set; } = "";
    /// <summary>The output folder, shared by every silo: shard files, input lists and the manifest.</summary>
    [Id(1)] public string OutputFolder { get; set; } = "";
    /// <summary>"parquet" or "csv".</summary>
    [Id(2)] public string Format { get; set; } = "parquet";
    /// <summary>Number of shards; shard i reads its image paths from <see cref="ShardLayout.InputList"/>.</summary>
    [Id(3)] public int ShardCount { get; set; }
    /// <summary>Distinct images in the job.</summary>
    [Id(4)] public int ImageCount { get; set; }
    /// <summary>Images per scorer call.</summary>
    [Id(5)] public int BatchSize { get; set; } = 256;
    /// <summary>Shards in flight per active silo.</summary>
    [Id(6)] public int ShardsPerSilo { get; set; } = 2;
}

/// <summary>Where a job stands.</summary>
public enum JobState
{
    /// <summary>No job of that id was submitted.</summary>
    Unknown,
    /// <summary>Shards are being embedded.</summary>
    Running,
    /// <summary>Every shard is written and the manifest lists them.</summary>
    Completed,
    /// <summary>Cancelled: no further shards are started, and the running ones stop before their next batch.</summary>
    Cancelled,
    /// <summary>A shard failed for a reason other than an unreadable image (named in <see cref="JobStatus.Error"/>).</summary>
    Failed,
}

/// <summary>A job's progress as the job grain reports it.</summary>
[GenerateSerializer]
public sealed class JobStatus
{
    /// <summary>The job's id.</summary>
    [Id(0)] public string JobId { get; set; } = "";
    /// <summary>Where the job stands.</summary>
    [Id(1)] public JobState State { get; set; }
    /// <summary>Shards in the job.</summary>
    [Id(2)] public int Shards { get; set; }
    /// <summary>Shards written.</summary>
    [Id(3)] public int ShardsDone { get; set; }
    /// <summary>Images in the job.</summary>
    [Id(4)] public int Images { get; set; }
    /// <summary>Embeddings written so far.</summary>
    [Id(5)] public long Rows { get; set; }
    /// <summary>Images that could not be read (listed in the manifest).</summary>
    [Id(6)] public int Unreadable { get; set; }
    /// <summary>Why the job failed; null otherwise.</summary>
    [Id(7)] public string? Error { get; set; }
    /// <summary>The manifest, once the job completed.</summary>
    [Id(8)] public string? Manifest { get; set; }
    /// <summary>From the job's start to its end (or to now while it runs), as the job grain measures it.</summary>
    [Id(9)] public TimeSpan Elapsed { get; set; }

    /// <summary>Whether the job will not change any more.</summary>
    public bool Finished => State is JobState.Completed or JobState.Cancelled or JobState.Failed;

    /// <inheritdoc/>
    public override string ToString() =>
        $"{JobId}: {State}, {ShardsDone}/{Shards} shards, {Rows:N0}/{Images:N0} images, {Unreadable} unreadable" +
        (Error is null ? "" : $"; {Error}") + (Manifest is null ? "" : $"; manifest {Manifest}");
}

/// <summary>What a shard wrote, reported to its job.</summary>
[GenerateSerializer]
public sealed class ShardReport
{
    /// <summary>The shard's index.</summary>
    [Id(0)] public int Shard { get; set; }
    /// <summary>The file written, relative to the output folder.</summary>
    [Id(1)] public string File { get; set; } = "";
    /// <summary>Embeddings written.</summary>
    [Id(2)] public int Rows { get; set; }
    /// <summary>One line per unreadable image: its path and the problem.</summary>
    [Id(3)] public List<string> Unreadable { get; set; } = [];
}

/// <summary>Embeddings of one batch, with the images that could not be read.</summary>
[GenerateSerializer]
public sealed class ScoredBatch
{
    /// <summary>The images embedded, in input order.</summary>
    [Id(0)] public List<string> Paths { get; set; } = [];
    /// <summary>Row-major [Paths.Count, Dimension].</summary>
    [Id(1)] public float[] Values { get; set; } = [];
    /// <summary>The embedding width D.</summary>
    [Id(2)] public int Dimension { get; set; }
    /// <summary>One line per unreadable image.</summary>
    [Id(3)] public List<string> Unreadable { get; set; } = [];
    /// <summary>Seconds the scorer spent decoding and embedding (its thread's busy time, not the wait for it).</summary>
    [Id(4)] public double Seconds { get; set; }
}

/// <summary>The job: its spec and progress in persistent storage; drives its shards and re-drives stalled ones.</summary>
public interface IEmbeddingJobGrain : IGrainWithStringKey
{
    /// <summary>Stores the spec and starts the shards; a second call with the job already stored changes nothing.</summary>
    Task Start(JobSpec spec);
    /// <summary>The job's progress.</summary>
    Task<JobStatus> GetStatus();
    /// <summary>Starts no further shards and stops the running ones before their next batch; the job ends Cancelled.</summary>
    Task Cancel();
    /// <summary>A shard's report; a repeated report of the same shard is ignored.</summary>
    Task ShardCompleted(ShardReport report);
    /// <summary>A shard's failure other than unreadable images: the job fails with its message.</summary>
    Task ShardFailed(int shard, string error);
}

/// <summary>One slice of a job's input: embeds its images, writes one file, records that it did.</summary>
public interface IShardGrain : IGrainWithStringKey
{
    /// <summary>Starts (or, when already running or done, re-reports) the shard; returns at once.</summary>
    [OneWay] Task Run(string jobId, int shard, JobSpec spec);

    /// <summary>Stops a running shard before its next batch (its job was cancelled): nothing is written or reported.</summary>
    [OneWay] Task Stop();
}

/// <summary>Decodes and embeds a batch of image files with an ONNX Runtime session kept for the activation's life.</summary>
public interface IScorerGrain : IGrainWithIntegerKey
{
    /// <summary>The embeddings of the readable images of <paramref name="paths"/>.</summary>
    Task<ScoredBatch> Score(string modelPath, List<string> paths, int batchSize);
}
