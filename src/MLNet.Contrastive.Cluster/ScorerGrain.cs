using MLNet.Contrastive.Data;
using MLNet.Contrastive.Onnx;
using Orleans.Concurrency;

namespace MLNet.Contrastive.Cluster;

/// <summary>A silo's scoring threads: at most this many batches are decoded and embedded at once.</summary>
public sealed class ScorerThrottle(int threads)
{
    internal SemaphoreSlim Slots { get; } = new(threads, threads);

    /// <summary>Batches scored at once on this silo.</summary>
    public int Threads { get; } = threads;
}

/// <summary>
/// Runs on the silo that calls it (a stateless worker), so each shard scores where it lives; one ONNX Runtime session
/// per activation, single-threaded, with the silo's <see cref="ScorerThrottle"/> bounding how many run at once.
/// </summary>
[StatelessWorker]
internal sealed class ScorerGrain(ScorerThrottle throttle) : Grain, IScorerGrain
{
    private ImageEmbedder? embedder;
    private string? loadedModel;
    private int loadedBatch;

    public async Task<ScoredBatch> Score(string modelPath, List<string> paths, int batchSize)
    {
        await throttle.Slots.WaitAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            if (embedder is null || loadedModel != modelPath || loadedBatch != batchSize)
            {
                embedder?.Dispose();
                embedder = new ImageEmbedder(modelPath, new ImageEmbedderOptions { BatchSize = batchSize, Threads = 1, Log = _ => { } });
                (loadedModel, loadedBatch) = (modelPath, batchSize);
            }
            var batch = Embed(embedder, paths);
            batch.Seconds = clock.Elapsed.TotalSeconds;
            return batch;
        }
        finally
        {
            throttle.Slots.Release();
        }
    }

    /// <summary>Decodes as the single-process loader does (same resizing, same channels), skipping unreadable files.</summary>
    internal static ScoredBatch Embed(ImageEmbedder embedder, List<string> paths)
    {
        var (channels, height, width) = embedder.InputShape;
        var options = new ImageLoadOptions { Channels = channels, Height = height, Width = width, SkipBadImages = true };
        ImageStore store;
        try
        {
            store = ImageStore.FromFiles(paths, null, options);
        }
        catch (ImageDataException e)
        {
            // Every image of the batch was unreadable.
            return new ScoredBatch { Dimension = embedder.Dimension, Unreadable = paths.Select(p => $"{p}: {e.Message}").ToList() };
        }
        var embeddings = store.Count == 0 ? null : embedder.Embed(store);
        return new ScoredBatch
        {
            Paths = [.. store.Sources],
            // The embedder's array is exactly [store.Count, D]: handed over, not copied row by row.
            Values = embeddings?.Values ?? [],
            Dimension = embedder.Dimension,
            Unreadable = [.. store.Skipped],
        };
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        embedder?.Dispose();
        return Task.CompletedTask;
    }
}
