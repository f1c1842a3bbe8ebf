using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// The standard SSL monitors, an epoch callback of the run (<see cref="PretrainOptions.MonitorEvery"/>), run between
/// epochs in eval mode: kNN accuracy on a labelled held-out split, and the collapse signals (spread of normalised
/// embeddings vs 1/√D, effective rank, uniformity, and the alignment of two augmented views of each image).
/// </summary>
internal sealed class TrainingMonitor : IEpochCallback
{
    private const int DefaultSampleSize = 2000;
    private readonly ImageStore images;
    private readonly ViewAugmenter augmenter;
    private readonly int seed;
    private readonly int every;
    private readonly Action<MonitorRecord> report;

    /// <summary>Monitors on <paramref name="monitorData"/> every <paramref name="every"/> epochs; <paramref name="report"/> hears each result.</summary>
    public TrainingMonitor(ImageStore monitorData, ViewAugmenter augmenter, int seed, int every, Action<MonitorRecord> report)
    {
        images = monitorData;
        this.augmenter = augmenter;
        this.seed = seed;
        this.every = every;
        this.report = report;
    }

    /// <summary>The run's monitors (its <see cref="PretrainOptions.MonitorData"/>, else up to 2,000 training images); null when <see cref="PretrainOptions.MonitorEvery"/> is 0.</summary>
    public static TrainingMonitor? For(PretrainOptions options, ImageStore training, ViewAugmenter augmenter, Action<MonitorRecord> report) =>
        options.MonitorEvery <= 0 ? null
            : new(options.MonitorData ?? training.Subset(Enumerable.Range(0, Math.Min(DefaultSampleSize, training.Count)).ToArray()), augmenter, options.Run.Seed,
                options.MonitorEvery, report);

    /// <summary>Measures after every <c>every</c>-th epoch; never stops the run.</summary>
    public bool AfterEpoch(Methods.PretrainingMethod method, int epoch)
    {
        if (epoch % every == 0) report(Measure(method.Encoder, epoch));
        return false;
    }

    public MonitorRecord Measure(ImageEncoder encoder, int epoch)
    {
        var wasTraining = encoder.training;
        encoder.eval();
        try
        {
            var embeddings = Embeddings.FromEncoder(encoder, images);
            using var generator = new Generator((ulong)(seed * 7919L + epoch));
            var signals = RepresentationMetrics.Measure(ViewEmbeddings(encoder, generator), ViewEmbeddings(encoder, generator));
            double? knn = null;
            if (images.Labels is not null && images.Count >= 10)
            {
                var bank = images.Count * 4 / 5;
                knn = KnnClassifier.Accuracy(Rows(embeddings, 0, bank), Rows(embeddings, bank, images.Count - bank));
            }
            return new MonitorRecord(epoch, knn, signals.StdOfNormalized, signals.ExpectedStd, signals.EffectiveRank,
                signals.Uniformity, signals.Alignment, signals.Collapsed);
        }
        finally
        {
            if (wasTraining) encoder.train();
        }
    }

    /// <summary>Embeddings of one random view of every monitor image.</summary>
    private Embeddings ViewEmbeddings(ImageEncoder encoder, Generator generator) =>
        Embeddings.FromEncoder(encoder, images, views: batch => augmenter.Augment(batch, generator));

    private static Embeddings Rows(Embeddings e, int start, int count) =>
        new(e.Values.AsSpan(start * e.Dimension, count * e.Dimension).ToArray(), count, e.Dimension, e.Labels![start..(start + count)]);
}
