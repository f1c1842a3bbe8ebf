using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="Nnclr"/>; heads sized like the other methods' for small images on a CPU.</summary>
public sealed class NnclrOptions : MethodOptions
{
    /// <summary>NT-Xent temperature τ. Default 0.1 (the paper's).</summary>
    public double Temperature { get; set; } = NnclrLoss.DefaultTemperature;

    /// <summary>
    /// Projections kept in the support set the neighbours come from. Default 4096 (lightly's NNCLR example on CIFAR-10;
    /// its NNMemoryBankModule defaults to 65,536 and the paper uses 98,304 on ImageNet). Keep it to a small fraction of
    /// the training images: a support set that holds every image several times over returns stale copies of the image
    /// itself. At least one step's projections (the batch size).
    /// </summary>
    public int SupportSize { get; set; } = 4096;

    /// <summary>Projection head hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Projection head output size (the support set's and the predictor's). Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <summary>Prediction head hidden size. Default 512.</summary>
    public int PredictorHiddenDimension { get; set; } = 512;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Nnclr(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(Temperature, nameof(Temperature));
        Range(SupportSize, 2, 1 << 24, nameof(SupportSize));
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
        Positive(PredictorHiddenDimension, nameof(PredictorHiddenDimension));
    }
}

/// <summary>
/// NNCLR (Dwibedi et al. 2021): SimCLR's views and encoder, a projection head (batch norm on its output, as lightly's
/// NNCLRProjectionHead) and a prediction head; each view's projection is swapped for its nearest neighbour in a FIFO
/// support set of earlier projections, which becomes the positive of the other view's prediction
/// (<see cref="NnclrLoss"/>). The second views' projections enter the support set after each step (lightly's example).
/// The support set starts empty and only its filled rows are searched; until the first step has filled some, a
/// projection is its own neighbour (lightly starts from random vectors instead). It is a buffer (<see cref="EmbeddingQueue"/>),
/// so checkpoints carry it. The objective couples the batch only through the embeddings, so gradient caching applies.
/// </summary>
public sealed class Nnclr : PretrainingMethod, IEmbeddingObjective
{
    private readonly ImageEncoder encoder;
    private readonly ProjectionHead projection;
    private readonly ProjectionHead predictor;
    private readonly ViewAugmenter views;
    private readonly NnclrOptions options;
    private readonly EmbeddingQueue supportSet;
    private Tensor? pendingProjections;

    /// <summary>NNCLR around <paramref name="encoder"/>, with an empty support set.</summary>
    public Nnclr(ImageEncoder encoder, NnclrOptions options, MethodSetup setup) : base(nameof(Nnclr), encoder, options)
    {
        this.encoder = encoder;
        this.options = options;
        projection = new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension, normalizeOutput: true);
        predictor = new ProjectionHead(options.ProjectionDimension, options.PredictorHiddenDimension, options.ProjectionDimension);
        views = new ViewAugmenter(setup.Views);
        supportSet = new EmbeddingQueue(this, zeros(options.SupportSize, options.ProjectionDimension), "support", "support_position", "support_count");
        RegisterComponents();
    }

    /// <summary>The support set: normalised projections of earlier second views.</summary>
    public EmbeddingQueue Support => supportSet;

    /// <inheritdoc/>
    public override int ViewsPerImage => 2;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context) => IEmbeddingObjective.WholeBatchLoss(this, images, context);

    /// <summary>The objective takes the global batch's embeddings over data-parallel ranks, and the support set grows by the global batch's projections.</summary>
    public bool ExactAcrossRanks => true;

    /// <inheritdoc/>
    public Tensor Views(Tensor images, StepContext context)
    {
        if (images.shape[0] > options.SupportSize)
            throw new ArgumentException($"NNCLR's support set ({options.SupportSize} projections) must hold at least one step's ({images.shape[0]}); raise SupportSize or lower the batch size.");
        return TwoViews(images, views, views, context);
    }

    /// <summary>Projection and prediction of each view side by side, [rows, 2P].</summary>
    public Tensor Embed(Tensor views)
    {
        using var scope = NewDisposeScope();
        var z = projection.forward(encoder.forward(views));
        return cat(new[] { z, predictor.forward(z) }, 1).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="NnclrLoss"/> of the two views' projections and predictions against the support set; keeps the second views' projections for it.</summary>
    public Tensor Objective(Tensor embeddings, StepContext context)
    {
        var n = embeddings.shape[0] / 2;
        var p = options.ProjectionDimension;
        var (z, predictions) = (embeddings[.., ..p].detach(), embeddings[.., p..]);
        var (z1, z2) = (z[..(int)n], z[(int)n..]);
        var filled = supportSet.Count;
        using var scope = NewDisposeScope();
        // An empty support set (the first step): each projection is its own neighbour.
        var neighbours = filled > 0 ? supportSet.Rows.narrow(0, 0, filled) : z;
        var loss = NnclrLoss.Compute(z1, z2, predictions[..(int)n], predictions[(int)n..], neighbours, options.Temperature);
        pendingProjections?.Dispose();
        pendingProjections = F.normalize(z2, dim: 1).DetachFromDisposeScope();
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Writes this step's second-view projections over the oldest in the support set.</summary>
    public override void AfterStep(StepContext context)
    {
        if (pendingProjections is null) return;
        supportSet.Enqueue(pendingProjections);
        pendingProjections.Dispose();
        pendingProjections = null;
    }
}
