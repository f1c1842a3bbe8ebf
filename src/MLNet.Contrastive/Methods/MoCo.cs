using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="MoCo"/>; defaults follow MoCo v2 and MoCo's CIFAR demo, with a smaller head.</summary>
public sealed class MoCoOptions : MethodOptions
{
    /// <summary>InfoNCE temperature τ. Default 0.2 (MoCo v2).</summary>
    public double Temperature { get; set; } = 0.2;

    /// <summary>Keys K kept in the queue as negatives; at least one step's keys (2 × batch). Default 4096.</summary>
    public int QueueSize { get; set; } = 4096;

    /// <summary>Momentum m of the key encoder's moving average (constant, as in MoCo). Default 0.99 (MoCo's CIFAR demo; 0.999 on ImageNet).</summary>
    public double Momentum { get; set; } = 0.99;

    /// <summary>
    /// The key batch is shuffled and run through the key encoder in this many groups, so that batch norm's statistics of
    /// a key never come from the same images as its query's (MoCo's shuffling BN, on one device). Over data-parallel
    /// ranks the groups are the global batch's, each normalised over every rank's members. Default 8.
    /// </summary>
    public int ShuffleGroups { get; set; } = 8;

    /// <summary>Projection head hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Projection head output size. Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new MoCo(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(Temperature, nameof(Temperature));
        Range(QueueSize, 2, 1 << 24, nameof(QueueSize));
        Range(Momentum, 0, 1, nameof(Momentum));
        Range(ShuffleGroups, 1, 1024, nameof(ShuffleGroups));
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
    }
}

/// <summary>
/// MoCo v2 (He et al. 2020, Chen et al. 2020): queries from the encoder → projection head, keys from a momentum copy
/// of both, InfoNCE of each query against its key and a FIFO queue of K earlier keys — negatives beyond the batch,
/// which lets a small batch see as many negatives as a large one. Symmetrised over the two views; both views' keys
/// enter the queue after the step. The queue and its write position are buffers (<see cref="EmbeddingQueue"/>), so checkpoints carry them. Each
/// query's loss involves only its own key and the queue, so gradient caching applies to the query side: the keys are
/// computed with the views, without a graph, and the queries chunk by chunk.
/// </summary>
public sealed class MoCo : PretrainingMethod, IEmbeddingObjective
{
    private readonly ImageEncoder encoder;
    private readonly ProjectionHead projection;
    private readonly ImageEncoder keyEncoder;
    private readonly ProjectionHead keyProjection;
    private readonly EmbeddingQueue keyQueue;
    private readonly ViewAugmenter views;
    private readonly MoCoOptions options;
    private readonly MomentumTarget keySide;
    private Tensor? pendingKeys;

    /// <summary>MoCo around <paramref name="encoder"/>, with a queue of random unit vectors to start.</summary>
    public MoCo(ImageEncoder encoder, MoCoOptions options, MethodSetup setup) : base(nameof(MoCo), encoder, options)
    {
        this.encoder = encoder;
        this.options = options;
        projection = new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension);
        keyEncoder = ImageEncoder.Create(encoder.Options);
        keyProjection = new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension);
        // Random unit keys to start (no fill count): the queue counts as full from the first step, as in MoCo.
        keyQueue = new EmbeddingQueue(this, F.normalize(randn(options.QueueSize, options.ProjectionDimension), dim: 1), "queue", "queue_position");
        views = new ViewAugmenter(setup.Views);
        RegisterComponents();
        keySide = new MomentumTarget((encoder, keyEncoder), (projection, keyProjection));
    }

    /// <summary>The queue of keys [K, D], oldest first from <see cref="QueuePosition"/>.</summary>
    public Tensor Queue => keyQueue.Rows;

    /// <summary>Where the next keys are written (the oldest key).</summary>
    public long QueuePosition => keyQueue.Position;

    /// <inheritdoc/>
    public override int ViewsPerImage => 2;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context) => IEmbeddingObjective.WholeBatchLoss(this, images, context);

    /// <summary>The objective takes the global batch's queries and keys over data-parallel ranks (the queue is built from them).</summary>
    public bool ExactAcrossRanks => true;

    /// <summary>Two views of every image [2B, C, H, W]; their keys (momentum encoder, shuffled groups, no graph) are kept for the objective and the queue.</summary>
    public Tensor Views(Tensor images, StepContext context)
    {
        // Over data-parallel ranks every rank enqueues the global batch's keys.
        var n = (int)images.shape[0] * (context.Ranks?.WorldSize ?? 1);
        if (2 * n > options.QueueSize)
            throw new ArgumentException($"MoCo's queue ({options.QueueSize} keys) must hold at least one step's keys (2 × batch = {2 * n}); raise QueueSize or lower the batch size.");
        var twoViews = TwoViews(images, views, views, context);
        pendingKeys?.Dispose();
        using (no_grad()) pendingKeys = Keys(twoViews, context.Generator).DetachFromDisposeScope();
        return twoViews;
    }

    /// <summary>Normalised queries [rows, D] of some of the views.</summary>
    public Tensor Embed(Tensor views) => F.normalize(projection.forward(encoder.forward(views)), dim: 1);

    /// <summary>
    /// InfoNCE of each view's query against the other view's key and the queue, averaged over the two directions. Over
    /// data-parallel ranks the queries are the global batch's (<see cref="ExactAcrossRanks"/>), and so are the keys, which
    /// every rank then enqueues alike: the ranks' queues stay one process's.
    /// </summary>
    public Tensor Objective(Tensor queries, StepContext context)
    {
        var keys = pendingKeys ?? throw new InvalidOperationException("MoCo's objective needs the keys of the step's views; call Views first.");
        if (context.Ranks is { } ranks && keys.shape[0] != queries.shape[0])
        {
            keys = Training.GlobalBatch.Gather(keys, keys.shape[0] / 2, ranks, live: false).DetachFromDisposeScope();
            pendingKeys.Dispose();
            pendingKeys = keys;
        }
        var n = (int)queries.shape[0] / 2;
        var negatives = keyQueue.Rows;
        return (MoCoLoss.Compute(queries[..n], keys[n..], negatives, options.Temperature) + MoCoLoss.Compute(queries[n..], keys[..n], negatives, options.Temperature)) / 2;
    }

    /// <summary>Moves the key encoder towards the encoder, then enqueues this step's keys over the oldest ones.</summary>
    public override void AfterStep(StepContext context)
    {
        keySide.Update(options.Momentum);
        if (pendingKeys is null) return;
        Enqueue(pendingKeys);
        pendingKeys.Dispose();
        pendingKeys = null;
    }

    /// <summary>Writes <paramref name="keys"/> [n, D] (n ≤ K) over the n oldest keys, wrapping around the end of the queue.</summary>
    internal void Enqueue(Tensor keys) => keyQueue.Enqueue(keys);

    /// <summary>Only the query side is trained; the key side follows by moving average.</summary>
    public override IEnumerable<ParameterGroup> ParameterGroups() =>
        [new ParameterGroup(encoder.parameters().Concat(projection.parameters()).ToList())];

    /// <summary>
    /// Normalised keys [2B, D] of the views, computed in shuffled groups (shuffling BN) and put back in order. Over
    /// data-parallel ranks the shuffle is one process's: the permutation is drawn over the global batch's 2·N·b views,
    /// and each rank passes its own views of each group, whose batch norms (synchronised, weighted by each rank's count)
    /// then normalise by the whole group, as one process's pass of that group does — without moving any image.
    /// </summary>
    private Tensor Keys(Tensor twoViews, Generator generator)
    {
        var count = twoViews.shape[0];
        // Without synchronised batch norm a group's members on one rank would be normalised alone (one row cannot be):
        // each rank then shuffles its own keys into groups, as MoCo on one device.
        var (rank, ranks) = SampleDraws.Current is { Ranks: > 1 } slice && slice.Images * 2 == count && SyncBatchNorm.Synchronizing
            ? (slice.Rank, slice.Ranks) : (0, 1);
        var global = count * ranks;
        var order = randperm(global, generator: generator);
        var groups = Math.Max(1, Math.Min(options.ShuffleGroups, global / 2));
        Tensor Pass(Tensor part) => F.normalize(keyProjection.forward(keyEncoder.forward(part)), dim: 1);
        if (ranks == 1)
        {
            var shuffled = twoViews.index_select(0, order.to(twoViews.device)).tensor_split(groups);
            return cat(shuffled.Select(Pass).ToArray(), 0).index_select(0, argsort(order).to(twoViews.device));
        }
        // Global row of view v of this rank's image i: v·N·b + rank·b + i (GlobalBatch's order); this rank's rows of each group.
        var b = count / 2;
        var positions = order.data<long>().ToArray();
        var keys = new Tensor[groups];
        var local = new List<long>();
        // tensor_split's groups: the first global % groups hold one view more.
        for (long group = 0, start = 0; group < groups; group++)
        {
            var size = global / groups + (group < global % groups ? 1 : 0);
            var mine = positions[(int)start..(int)(start + size)].Where(row => row % (ranks * b) / b == rank)
                .Select(row => row / (ranks * b) * b + row % b).ToArray();
            start += size;
            local.AddRange(mine);
            using var rows = tensor(mine, ScalarType.Int64);
            keys[group] = Pass(twoViews.index_select(0, rows.to(twoViews.device)));
        }
        using var back = argsort(tensor(local.ToArray(), ScalarType.Int64));
        return cat(keys, 0).index_select(0, back.to(twoViews.device));
    }
}
