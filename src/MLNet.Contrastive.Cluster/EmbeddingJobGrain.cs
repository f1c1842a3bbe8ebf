using System.Text.Json;
using Microsoft.Extensions.Logging;
using MLNet.Contrastive.Runtime;

namespace MLNet.Contrastive.Cluster;

/// <summary>A job's stored state: its spec and what each shard reported.</summary>
[GenerateSerializer]
public sealed class JobRecord
{
    /// <summary>Null until the job is submitted.</summary>
    [Id(0)] public JobSpec? Spec { get; set; }
    /// <summary>Where the job stands.</summary>
    [Id(1)] public JobState State { get; set; }
    /// <summary>The reports of the shards written, by shard index.</summary>
    [Id(2)] public Dictionary<int, ShardReport> Shards { get; set; } = [];
    /// <summary>Why the job failed.</summary>
    [Id(3)] public string? Error { get; set; }
    /// <summary>When the job was started (UTC).</summary>
    [Id(4)] public DateTime Started { get; set; }
    /// <summary>When it completed, failed or was cancelled (UTC); null while it runs.</summary>
    [Id(5)] public DateTime? Finished { get; set; }
}

/// <summary>
/// Keeps a window of shards in flight (shards per silo × active silos) and, every <see cref="ClusterHosting.RedriveInterval"/>,
/// sends Run again to each one it has not heard from: a shard on a lost silo is thereby activated on a live one, and a
/// shard already written only repeats its report. A reminder brings the job itself back after losing its silo or a
/// restart of the whole cluster; its state says which shards are done, so it resumes, not restarts.
/// </summary>
internal sealed class EmbeddingJobGrain(
    [PersistentState("job", ClusterHosting.StorageName)] IPersistentState<JobRecord> record,
    ILogger<EmbeddingJobGrain> log) : Grain, IEmbeddingJobGrain, IRemindable
{
    private const string ReminderName = "redrive";
    private readonly SortedSet<int> inFlight = [];
    private IGrainTimer? timer;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (record.State.State == JobState.Running) StartTimer();
        return Task.CompletedTask;
    }

    public async Task Start(JobSpec spec)
    {
        if (record.State.Spec is not null) return;
        record.State = new JobRecord { Spec = spec, State = JobState.Running, Started = DateTime.UtcNow };
        await record.WriteStateAsync();
        await this.RegisterOrUpdateReminder(ReminderName, ClusterHosting.ReminderPeriod, ClusterHosting.ReminderPeriod);
        StartTimer();
        await Drive();
    }

    public Task<JobStatus> GetStatus()
    {
        var spec = record.State.Spec;
        return Task.FromResult(new JobStatus
        {
            JobId = this.GetPrimaryKeyString(),
            State = spec is null ? JobState.Unknown : record.State.State,
            Shards = spec?.ShardCount ?? 0,
            ShardsDone = record.State.Shards.Count,
            Images = spec?.ImageCount ?? 0,
            Rows = record.State.Shards.Values.Sum(s => (long)s.Rows),
            Unreadable = record.State.Shards.Values.Sum(s => s.Unreadable.Count),
            Error = record.State.Error,
            Manifest = record.State.State == JobState.Completed ? Path.Combine(spec!.OutputFolder, ShardLayout.ManifestFile) : null,
            Elapsed = spec is null ? TimeSpan.Zero : (record.State.Finished ?? DateTime.UtcNow) - record.State.Started,
        });
    }

    public async Task Cancel()
    {
        if (record.State.State != JobState.Running) return;
        var running = inFlight.ToList();
        await Finish(JobState.Cancelled, null);
        var id = this.GetPrimaryKeyString();
        foreach (var shard in running) GrainFactory.GetGrain<IShardGrain>($"{id}/{shard}").Stop().Ignore();
    }

    public async Task ShardCompleted(ShardReport report)
    {
        inFlight.Remove(report.Shard);
        if (record.State.State != JobState.Running || !record.State.Shards.TryAdd(report.Shard, report)) return;
        if (record.State.Shards.Count == record.State.Spec!.ShardCount)
        {
            WriteManifest();
            await Finish(JobState.Completed, null);
        }
        else
        {
            await record.WriteStateAsync();
            await Drive();
        }
    }

    public async Task ShardFailed(int shard, string error)
    {
        if (record.State.State == JobState.Running) await Finish(JobState.Failed, error);
    }

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        // Activation already restarted the timer; a reminder of a finished job is a leftover.
        return record.State.State == JobState.Running ? Task.CompletedTask : this.UnregisterReminder(ReminderName);
    }

    private async Task UnregisterReminder(string name)
    {
        if (await this.GetReminder(name) is { } reminder) await this.UnregisterReminder(reminder);
    }

    private void StartTimer() =>
        timer ??= this.RegisterGrainTimer(Redrive, ClusterHosting.RedriveInterval, ClusterHosting.RedriveInterval);

    /// <summary>Sends Run again to every shard in flight (it is one-way and idempotent), then fills the window.</summary>
    private async Task Redrive(CancellationToken cancellation)
    {
        if (record.State.State != JobState.Running) return;
        foreach (var shard in inFlight) Send(shard);
        await Drive();
    }

    private async Task Drive()
    {
        var spec = record.State.Spec!;
        var silos = (await GrainFactory.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true)).Count;
        var window = Math.Max(1, silos) * spec.ShardsPerSilo;
        for (var shard = 0; shard < spec.ShardCount && inFlight.Count < window; shard++)
            if (!record.State.Shards.ContainsKey(shard) && inFlight.Add(shard)) Send(shard);
    }

    private void Send(int shard)
    {
        var id = this.GetPrimaryKeyString();
        GrainFactory.GetGrain<IShardGrain>($"{id}/{shard}").Run(id, shard, record.State.Spec!).Ignore();
    }

    private async Task Finish(JobState state, string? error)
    {
        record.State.State = state;
        record.State.Error = error;
        record.State.Finished = DateTime.UtcNow;
        await record.WriteStateAsync();
        inFlight.Clear();
        timer?.Dispose();
        timer = null;
        await UnregisterReminder(ReminderName);
        log.LogInformation("Job {Job} {State}{Error}", this.GetPrimaryKeyString(), state, error is null ? "" : $": {error}");
    }

    /// <summary>Lists every shard file with its rows, and every unreadable image, in shard order.</summary>
    private void WriteManifest()
    {
        var spec = record.State.Spec!;
        var shards = record.State.Shards.OrderBy(s => s.Key).Select(s => s.Value).ToList();
        var manifest = new
        {
            job = this.GetPrimaryKeyString(),
            model = spec.ModelPath,
            format = spec.Format,
            images = spec.ImageCount,
            rows = shards.Sum(s => (long)s.Rows),
            shards = shards.Select(s => new { shard = s.Shard, file = s.File, rows = s.Rows }),
            unreadable = shards.SelectMany(s => s.Unreadable),
        };
        AtomicFile.WriteAllText(Path.Combine(spec.OutputFolder, ShardLayout.ManifestFile),
            JsonSerializer.Serialize(manifest, new JsonSerializerOptions { WriteIndented = true }));
    }
}
