using MLNet.Contrastive.Data;
using MLNet.Contrastive.Onnx;

namespace MLNet.Contrastive.Cluster;

/// <summary>Settings of an embedding job.</summary>
public sealed class EmbeddingJobOptions
{
    /// <summary>The encoder: an encoder.onnx, or the folder pretrain wrote (its encoder.onnx). Required.</summary>
    public string Model { get; set; } = "";

    /// <summary>An image folder (searched recursively) or a text file with one image path a line. Required.</summary>
    public string Data { get; set; } = "";

    /// <summary>The output folder, which every silo must reach at the same path. Required.</summary>
    public string Output { get; set; } = "";

    /// <summary>"parquet" (default) or "csv".</summary>
    public string Format { get; set; } = "parquet";

    /// <summary>Images per shard: the unit that is redone when a silo is lost. Default 1024.</summary>
    public int ShardSize { get; set; } = 1024;

    /// <summary>Images per scorer call. Default 256.</summary>
    public int BatchSize { get; set; } = 256;

    /// <summary>Shards in flight per active silo. Default 2.</summary>
    public int ShardsPerSilo { get; set; } = 2;

    /// <summary>The job's id. Default: a new one.</summary>
    public string? JobId { get; set; }
}

/// <summary>Submits, follows and cancels embedding jobs on a cluster (the API behind <c>cluster submit|status|cancel</c>).</summary>
public sealed class EmbeddingJobs(IGrainFactory grains)
{
    /// <summary>
    /// Checks the model loads, writes the shards' input lists into the output folder and starts the job; returns its id.
    /// Every path is made absolute and each image is listed once.
    /// </summary>
    public async Task<string> SubmitAsync(EmbeddingJobOptions options)
    {
        if (options.Format is not ("parquet" or "csv")) throw new ArgumentException($"Format must be parquet or csv, not {options.Format}.", nameof(options));
        if (options.ShardSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.ShardSize, "The shard size must be positive.");
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "The batch size must be positive.");
        if (options.ShardsPerSilo <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.ShardsPerSilo, "Shards per silo must be positive.");
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Output, nameof(options.Output));
        var model = CheckModel(options.Model);
        var images = ListImages(options.Data);
        var output = Path.GetFullPath(options.Output);
        var shards = (images.Count + options.ShardSize - 1) / options.ShardSize;
        for (var shard = 0; shard < shards; shard++)
        {
            var list = ShardLayout.InputList(output, shard);
            Directory.CreateDirectory(Path.GetDirectoryName(list)!);
            await File.WriteAllLinesAsync(list, images.Skip(shard * options.ShardSize).Take(options.ShardSize));
        }
        var id = options.JobId ?? $"job-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}";
        await grains.GetGrain<IEmbeddingJobGrain>(id).Start(new JobSpec
        {
            ModelPath = model, OutputFolder = output, Format = options.Format, ShardCount = shards, ImageCount = images.Count,
            BatchSize = options.BatchSize, ShardsPerSilo = options.ShardsPerSilo,
        });
        return id;
    }

    /// <summary>The job's progress (State Unknown when no such job was submitted).</summary>
    public Task<JobStatus> StatusAsync(string jobId) => grains.GetGrain<IEmbeddingJobGrain>(jobId).GetStatus();

    /// <summary>Starts no further shards of the job.</summary>
    public Task CancelAsync(string jobId) => grains.GetGrain<IEmbeddingJobGrain>(jobId).Cancel();

    /// <summary>Polls until the job finishes (or <paramref name="cancellation"/> fires); calls <paramref name="progress"/> on each change.</summary>
    public async Task<JobStatus> WaitAsync(string jobId, Action<JobStatus>? progress = null, TimeSpan? poll = null, CancellationToken cancellation = default)
    {
        string? last = null;
        while (true)
        {
            JobStatus status;
            try
            {
                status = await StatusAsync(jobId);
            }
            catch (Exception e) when (e is TimeoutException or OrleansException && !cancellation.IsCancellationRequested)
            {
                // The job's silo was lost: the next call activates it on a live one.
                await Task.Delay(poll ?? TimeSpan.FromSeconds(1), cancellation);
                continue;
            }
            if (status.ToString() != last) progress?.Invoke(status);
            last = status.ToString();
            if (status.Finished || status.State == JobState.Unknown) return status;
            await Task.Delay(poll ?? TimeSpan.FromSeconds(1), cancellation);
        }
    }

    /// <summary>
    /// The encoder's full path (see <see cref="ResolveModel"/>) once ONNX Runtime has loaded it: a model that does not load
    /// is refused here, with the loader's message, rather than failing on every silo.
    /// </summary>
    public static string CheckModel(string model)
    {
        var path = ResolveModel(model);
        using (new ImageEmbedder(path, new ImageEmbedderOptions { Threads = 1, Log = _ => { } })) { }
        return path;
    }

    /// <summary>An encoder.onnx path, or the encoder.onnx inside (or beside a model.zip in) a run folder.</summary>
    public static string ResolveModel(string model)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model, nameof(model));
        var path = Path.GetFullPath(model);
        if (Directory.Exists(path)) path = Path.Combine(path, "encoder.onnx");
        else if (path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)) path = Path.Combine(Path.GetDirectoryName(path)!, "encoder.onnx");
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path}: encoder not found (pass an encoder.onnx, or the folder pretrain wrote).", path);
    }

    /// <summary>The images of a folder (recursively, ordinal order) or of a list file, absolute and each once.</summary>
    public static List<string> ListImages(string data)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(data, nameof(data));
        List<string> files;
        if (Directory.Exists(data)) files = ImageDecoder.ImageFilesUnder(data);
        else if (File.Exists(data))
        {
            var folder = Path.GetDirectoryName(Path.GetFullPath(data))!;
            files = File.ReadLines(data).Select(l => l.Trim()).Where(l => l.Length > 0).Select(l => Path.GetFullPath(l, folder)).ToList();
        }
        else throw new ImageDataException(data, "no such folder or list file.");
        files = files.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
        return files.Count > 0 ? files : throw new ImageDataException(data, "no images (empty dataset).");
    }
}
