using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="Nce"/>.</summary>
public sealed class NceOptions : MethodOptions
{
    /// <summary>Noise samples k per positive pair, drawn from the batch. Default 16.</summary>
    public int NoiseSamples { get; set; } = NceLoss.DefaultNoiseSamples;

    /// <summary>Temperature τ of the similarity scores. Default 0.2.</summary>
    public double Temperature { get; set; } = NtXentLoss.DefaultTemperature;

    /// <summary>Projection head hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Projection head output size. Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Nce(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        Positive(NoiseSamples, nameof(NoiseSamples));
        Positive(Temperature, nameof(Temperature));
        Positive(ProjectionHiddenDimension, nameof(ProjectionHiddenDimension));
        Positive(ProjectionDimension, nameof(ProjectionDimension));
    }
}

/// <summary>
/// Binary NCE on two views per image: each of the 2N view embeddings is an anchor whose positive is the other view
/// of its image; k noise samples are drawn uniformly (with the step's generator) from the 2N − 2 embeddings of the
/// other images, so Pn = 1 / (2N − 2). Probabilities are exp(cos / τ) / Z with Z estimated from the batch.
/// </summary>
public sealed class Nce : PretrainingMethod, IEmbeddingObjective
{
    private readonly ImageEncoder encoder;
    private readonly ProjectionHead projection;
    private readonly ViewAugmenter views;
    private readonly int noiseSamples;
    private readonly double temperature;

    /// <summary>Binary NCE around <paramref name="encoder"/>.</summary>
    public Nce(ImageEncoder encoder, NceOptions options, MethodSetup setup) : base(nameof(Nce), encoder, options)
    {
        this.encoder = encoder;
        projection = new ProjectionHead(encoder.OutputDimension, options.ProjectionHiddenDimension, options.ProjectionDimension);
        views = new ViewAugmenter(setup.Views);
        (noiseSamples, temperature) = (options.NoiseSamples, options.Temperature);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int ViewsPerImage => 2;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context) => IEmbeddingObjective.WholeBatchLoss(this, images, context);

    /// <summary>
    /// Over data-parallel ranks the objective takes the global batch's embeddings, and its noise samples are drawn over
    /// the global batch's rows from the generator every rank holds alike: one process's draws.
    /// </summary>
    public bool ExactAcrossRanks => true;

    /// <inheritdoc/>
    public Tensor Views(Tensor images, StepContext context) => TwoViews(images, views, views, context);

    /// <inheritdoc/>
    public Tensor Embed(Tensor views) => F.normalize(projection.forward(encoder.forward(views)), dim: 1);

    /// <inheritdoc/>
    public Tensor Objective(Tensor z, StepContext context)
    {
        var total = z.shape[0];
        var n = total / 2;
        var anchor = arange(total, device: z.device);
        var positiveIndex = (anchor + n) % total;
        var noiseIndex = NoiseIndices(anchor, positiveIndex, total, context.Generator).to(z.device);
        var positiveSimilarity = (z * z[positiveIndex]).sum(1);
        var noiseSimilarity = (z.unsqueeze(1) * z[noiseIndex]).sum(2);
        var positive = NceLoss.Probabilities(positiveSimilarity, noiseSimilarity, temperature, total - 2, out var noise);
        return NceLoss.Compute(positive, noise, 1.0 / (total - 2));
    }

    /// <summary>[2N, k] indices drawn uniformly from the 2N − 2 rows that are neither the anchor nor its positive.</summary>
    private Tensor NoiseIndices(Tensor anchor, Tensor positive, long total, Generator generator)
    {
        var draw = randint(total - 2, new long[] { total, noiseSamples }, generator: generator);
        var (low, high) = (minimum(anchor, positive).cpu().unsqueeze(1), maximum(anchor, positive).cpu().unsqueeze(1));
        draw += (draw >= low).to_type(ScalarType.Int64);
        draw += (draw >= high).to_type(ScalarType.Int64);
        return draw;
    }
}
