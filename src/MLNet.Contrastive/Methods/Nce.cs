using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Binary NCE on two views per image: each of the 2N view embeddings is an anchor whose positive is the other view
/// of its image; k noise samples are drawn uniformly (with the step's generator) from the 2N − 2 embeddings of the
/// other images, so Pn = 1 / (2N − 2). Probabilities are exp(cos / τ) / Z with Z estimated from the batch.
/// </summary>
public sealed class Nce : PretrainingMethod
{
    private readonly ResNetEncoder encoder;
    private readonly ProjectionHead projection;
    private readonly int noiseSamples;
    private readonly double temperature;

    public Nce(ResNetEncoder encoder, int hiddenDimension, int projectionDimension, int noiseSamples, double temperature)
        : base(nameof(Nce), encoder)
    {
        this.encoder = encoder;
        projection = new ProjectionHead(encoder.EmbeddingDimension, hiddenDimension, projectionDimension);
        (this.noiseSamples, this.temperature) = (noiseSamples, temperature);
        RegisterComponents();
    }

    public override int ViewsPerImage => 2;

    public override Tensor Loss(Tensor images, Tensor? labels, ViewAugmenter augmenter, Generator generator)
    {
        using var scope = NewDisposeScope();
        var n = images.shape[0];
        var z = F.normalize(projection.forward(encoder.forward(TwoViews(images, augmenter, generator))), dim: 1);
        var total = 2 * n;
        var anchor = arange(total, device: z.device);
        var positiveIndex = (anchor + n) % total;
        var noiseIndex = NoiseIndices(anchor, positiveIndex, total, generator).to(z.device);
        var positiveSimilarity = (z * z[positiveIndex]).sum(1);
        var noiseSimilarity = (z.unsqueeze(1) * z[noiseIndex]).sum(2);
        var positive = NceLoss.Probabilities(positiveSimilarity, noiseSimilarity, temperature, total - 2, out var noise);
        return NceLoss.Compute(positive, noise, 1.0 / (total - 2)).MoveToOuterDisposeScope();
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
