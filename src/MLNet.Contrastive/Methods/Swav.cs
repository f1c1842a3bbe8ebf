using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="Swav"/>.</summary>
public sealed class SwavOptions : MethodOptions
{
    /// <summary>Prototypes K (clusters the codes spread the batch over). Default 100.</summary>
    public int Prototypes { get; set; } = 100;

    /// <summary>Softmax temperature τ of the swapped prediction. Default 0.1.</summary>
    public double Temperature { get; set; } = 0.1;

    /// <summary>Sinkhorn-Knopp's entropy weight ε (smaller: sharper codes). Default 0.05.</summary>
    public double Epsilon { get; set; } = 0.05;

    /// <summary>Sinkhorn-Knopp iterations. Default 3.</summary>
    public int SinkhornIterations { get; set; } = 3;

    /// <summary>Fraction of training with the prototypes frozen (SwAV freezes them for the first epoch). Default 0.05.</summary>
    public double FreezePrototypesFraction { get; set; } = 0.05;

    /// <summary>Multi-crop: small crops per image besides the two global views; 0 trains on the two views only. Default 4.</summary>
    public int LocalCrops { get; set; } = 4;

    /// <summary>Side of the small crops in pixels; null is 4/7 of the image side (16 for 28 px, as SwAV's 96 of 224 is 0.43). Default null.</summary>
    public int? LocalCropSize { get; set; }

    /// <summary>Range of a small crop's area as a fraction of the image. Defaults 0.1–0.4.</summary>
    public double LocalCropScaleMin { get; set; } = 0.1;

    /// <summary>Upper end of the small crops' area fraction (see <see cref="LocalCropScaleMin"/>).</summary>
    public double LocalCropScaleMax { get; set; } = 0.4;

    /// <summary>
    /// Embeddings of earlier batches kept per global view and added to the batch when computing its codes, for batches
    /// too small to spread over K prototypes; 0 turns it off. At least the batch size. Default 0.
    /// </summary>
    public int QueueLength { get; set; }

    /// <summary>Fraction of training after which a full queue joins the codes. Default 0.25.</summary>
    public double QueueStartFraction { get; set; } = 0.25;

    /// <summary>Projection head hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Projection head output size (the prototypes' dimension). Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Swav(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(Prototypes, nameof(Prototypes));
        Positive(Temperature, nameof(Temperature));
        Positive(Epsilon, nameof(Epsilon));
        Positive(SinkhornIterations, nameof(SinkhornIterations));
        Range(FreezePrototypesFraction, 0, 1, nameof(FreezePrototypesFraction));
        Range(LocalCrops, 0, 16, nameof(LocalCrops));
        if (LocalCropSize is { } size) Positive(size, nameof(LocalCropSize));
        Range(LocalCropScaleMin, 1e-3, 1, nameof(LocalCropScaleMin));
        Range(LocalCropScaleMax, LocalCropScaleMin, 1, nameof(LocalCropScaleMax));
        Range(QueueLength, 0, 1 << 20, nameof(QueueLength));
        Range(QueueStartFraction, 0, 1, nameof(QueueStartFraction));
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
    }
}

/// <summary>
/// SwAV (Caron et al. 2020): encoder → projection head → L2-normalised embedding → scores against K L2-normalised
/// prototypes; each global view's codes (Sinkhorn-Knopp over the batch, optionally with a queue of earlier embeddings)
/// are predicted from every other view's scores. Multi-crop adds small crops at their own size, which only predict.
/// The queue, its write position and its fill count are buffers (<see cref="EmbeddingQueue"/>), so checkpoints carry them.
/// </summary>
public sealed class Swav : PretrainingMethod
{
    private readonly ImageEncoder encoder;
    private readonly ProjectionHead projection;
    private readonly Linear prototypes;
    private readonly MultiCrop crops;
    private readonly SwavOptions options;
    private readonly EmbeddingQueue embeddingQueue;
    private Tensor? pendingEmbeddings;

    /// <summary>SwAV around <paramref name="encoder"/>; the small crops follow the run's recipe at their own scale and size.</summary>
    public Swav(ImageEncoder encoder, SwavOptions options, MethodSetup setup) : base(nameof(Swav), encoder, options)
    {
        this.encoder = encoder;
        this.options = options;
        projection = new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension);
        prototypes = nn.Linear(options.ProjectionDimension, options.Prototypes, hasBias: false);
        crops = new MultiCrop(setup.Views, options.LocalCrops, options.LocalCropSize, options.LocalCropScaleMin, options.LocalCropScaleMax);
        // One queue per global view, written together.
        embeddingQueue = new EmbeddingQueue(this, zeros(2, options.QueueLength, options.ProjectionDimension), "queue", "queue_position", "queued");
        RegisterComponents();
    }

    /// <summary>The small crops' side for images of side <paramref name="imageSide"/>: the setting, or 4/7 of the side.</summary>
    internal int LocalCropSize(long imageSide) => crops.LocalCropSize(imageSide);

    /// <summary>The prototypes [K, P] (rows L2-normalised at the start of every step).</summary>
    public Tensor Prototypes => prototypes.weight!;

    /// <inheritdoc/>
    public override int ViewsPerImage => 2 + options.LocalCrops;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        var n = images.shape[0];
        // Over data-parallel ranks the codes and the queue are the global batch's (SwAV's all-reduced Sinkhorn sums).
        var ranks = context.Ranks;
        var global = n * (ranks?.WorldSize ?? 1);
        if (options.QueueLength > 0 && options.QueueLength < global)
            throw new ArgumentException($"SwAV's queue ({options.QueueLength} embeddings) must hold at least one batch ({global}); raise QueueLength or lower the batch size.");
        using var scope = NewDisposeScope();
        using (no_grad()) prototypes.weight!.copy_(F.normalize(prototypes.weight!, dim: 1));
        var views = crops.Crops(images, context.Generator);
        context.Mark("views");
        var embeddings = views.Select(c => F.normalize(projection.forward(encoder.forward(c)), dim: 1)).ToList();
        context.Mark("encoder");
        var scores = embeddings.SelectMany(z => prototypes.forward(z).split(n)).ToList();
        var codes = new List<Tensor>();
        using (no_grad())
        {
            var useQueue = options.QueueLength > 0 && context.Progress >= options.QueueStartFraction && embeddingQueue.IsFull;
            for (var i = 0; i < 2; i++)
            {
                // Sinkhorn over every rank's scores (rank by rank: one process's rows) after the queue's; this rank's codes.
                var batchScores = ranks is null ? scores[i].detach() : ranks.AllGather(scores[i].detach());
                if (useQueue) batchScores = cat(new[] { embeddingQueue.Rows[i].to(batchScores.device).mm(prototypes.weight!.t()), batchScores }, 0);
                var own = batchScores.shape[0] - global + n * (ranks?.Rank ?? 0);
                codes.Add(SwavLoss.SinkhornKnopp(batchScores, options.Epsilon, options.SinkhornIterations).narrow(0, own, n));
            }
        }
        var loss = SwavLoss.SwappedPrediction(codes, scores, options.Temperature);
        pendingEmbeddings?.Dispose();
        pendingEmbeddings = options.QueueLength <= 0 ? null
            : (ranks is null ? embeddings[0].detach() : Training.GlobalBatch.Gather(embeddings[0].detach(), n, ranks, live: false)).MoveToOuterDisposeScope();
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Keeps the prototypes still for the first <see cref="SwavOptions.FreezePrototypesFraction"/> of training.</summary>
    public override void AfterBackward(StepContext context)
    {
        if (context.Progress < options.FreezePrototypesFraction) prototypes.weight!.grad?.zero_();
    }

    /// <summary>Writes this step's global-view embeddings over the oldest in their queues.</summary>
    public override void AfterStep(StepContext context)
    {
        if (pendingEmbeddings is null) return;
        using (NewDisposeScope()) embeddingQueue.Enqueue(pendingEmbeddings.view(2, -1, pendingEmbeddings.shape[1]));
        pendingEmbeddings.Dispose();
        pendingEmbeddings = null;
    }
}
