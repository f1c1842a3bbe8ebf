using Microsoft.Extensions.Logging;
using Orleans.Placement;

namespace MLNet.Contrastive.Cluster;

/// <summary>A shard's stored progress.</summary>
[GenerateSerializer]
public sealed class ShardProgress
{
    /// <summary>Set once the shard's file is in place; the report is then resent, never the work redone.</summary>
    [Id(0)] public ShardReport? Written { get; set; }
    /// <summary>How many times the shard was started (more than one: a silo was lost, or the cluster restarted).</summary>
    [Id(1)] public int Attempts { get; set; }
}

/// <summary>
/// One slice of a job: reads its input list, scores it in batches on the local scorers, writes its file atomically,
/// records that in storage and reports to the job. Placed on the least-loaded silo; the job re-sends <see cref="Run"/>
/// until it hears back, so a shard lost with its silo is activated again elsewhere.
/// </summary>
[ActivationCountBasedPlacement]
internal sealed class ShardGrain(
    [PersistentState("shard", ClusterHosting.StorageName)] IPersistentState<ShardProgress> progress,
    ILogger<ShardGrain> log) : Grain, IShardGrain
{
    private const int MaxAttempts = 3;
    private Task? running;
    private bool stopped;

    public Task Run(string jobId, int shard, JobSpec spec)
    {
        if (!stopped && (running is null || running.IsCompleted)) running = Work(jobId, shard, spec);
        return Task.CompletedTask;
    }

    public Task Stop()
    {
        // Work reads the flag between batches, in this activation's turns.
        stopped = true;
        if (running is null || running.IsCompleted) DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private async Task Work(string jobId, int shard, JobSpec spec)
    {
        var job = GrainFactory.GetGrain<IEmbeddingJobGrain>(jobId);
        try
        {
            if (progress.State.Written is null)
            {
                progress.State.Attempts++;
                await progress.WriteStateAsync();
                var paths = await File.ReadAllLinesAsync(ShardLayout.InputList(spec.OutputFolder, shard));
                var scorer = GrainFactory.GetGrain<IScorerGrain>(0);
                var result = new ScoredBatch();
                var values = new List<float>();
                for (var start = 0; start < paths.Length; start += spec.BatchSize)
                {
                    if (stopped)
                    {
                        log.LogInformation("Job {Job}: shard {Shard} stopped after {Images} of {Total} images (job cancelled)", jobId, shard, start, paths.Length);
                        DeactivateOnIdle();
                        return;
                    }
                    var batch = await scorer.Score(spec.ModelPath, paths[start..Math.Min(paths.Length, start + spec.BatchSize)].ToList(), spec.BatchSize);
                    result.Paths.AddRange(batch.Paths);
                    result.Unreadable.AddRange(batch.Unreadable);
                    values.AddRange(batch.Values);
                    result.Seconds += batch.Seconds;
                    result.Dimension = batch.Dimension;
                }
                result.Values = [.. values];
                var file = ShardLayout.OutputFile(shard, spec.Format);
                await Task.Run(() => ShardOutput.Write(Path.Combine(spec.OutputFolder, file), result));
                progress.State.Written = new ShardReport { Shard = shard, File = file, Rows = result.Paths.Count, Unreadable = result.Unreadable };
                await progress.WriteStateAsync();
                log.LogInformation("Job {Job}: shard {Shard} wrote {Rows} rows to {File} (attempt {Attempt}; scoring {Seconds:F2} s)",
                    jobId, shard, result.Paths.Count, file, progress.State.Attempts, result.Seconds);
            }
            await job.ShardCompleted(progress.State.Written);
            DeactivateOnIdle();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            // A file system hiccup on a shared mount may pass: the job re-drives the shard; the third failure is final.
            if (progress.State.Attempts < MaxAttempts)
            {
                log.LogWarning(e, "Shard {Shard} of job {Job} failed (attempt {Attempt} of {Max}); it will be re-driven", shard, jobId, progress.State.Attempts, MaxAttempts);
                return;
            }
            log.LogError(e, "Shard {Shard} of job {Job} failed", shard, jobId);
            await job.ShardFailed(shard, $"shard {shard}: {e.Message}");
        }
        catch (Exception e)
        {
            // Storage or messaging trouble (a silo going down): the job's next re-drive starts the shard again.
            log.LogWarning(e, "Shard {Shard} of job {Job} stopped; it will be re-driven", shard, jobId);
        }
    }
}
