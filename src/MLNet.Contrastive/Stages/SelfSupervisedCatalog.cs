using Microsoft.ML;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Stages;

/// <summary>Entry point: <c>mlContext.SelfSupervised()</c>.</summary>
public static class MLContextExtensions
{
    /// <summary>Self-supervised pretraining estimators. (An extension on MLContext: the transforms catalog does not expose its environment.)</summary>
    public static SelfSupervisedCatalog SelfSupervised(this MLContext mlContext) => new(mlContext);
}

/// <summary>Self-supervised methods as ML.NET estimators; each returns the same embedding stage.</summary>
public sealed class SelfSupervisedCatalog
{
    private readonly MLContext mlContext;

    internal SelfSupervisedCatalog(MLContext mlContext) => this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));

    /// <summary>
    /// SimCLR: pretrains on the images of <paramref name="inputColumnName"/> (MLImage or image paths) and
    /// outputs <paramref name="outputColumnName"/>, a vector of D float32 values.
    /// </summary>
    /// <param name="outputColumnName">The embedding column.</param>
    /// <param name="inputColumnName">The image column (MLImage) or image-path column (text).</param>
    /// <param name="imageHeight">Images are resized to this height.</param>
    /// <param name="imageWidth">Images are resized to this width.</param>
    /// <param name="channels">1 (grayscale) or 3 (RGB).</param>
    /// <param name="epochs">Epochs, unless <paramref name="minutes"/> is given.</param>
    /// <param name="minutes">Wall-clock budget; overrides <paramref name="epochs"/>.</param>
    /// <param name="batchSize">Images per step.</param>
    /// <param name="temperature">NT-Xent temperature.</param>
    /// <param name="seed">Seed for initialisation, shuffling and augmentation.</param>
    public ImageEmbeddingEstimator SimClr(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null,
        int batchSize = 256, double temperature = NtXentLoss.DefaultTemperature, int seed = 0) =>
        SimClr(Flat(outputColumnName, inputColumnName, imageHeight, imageWidth, channels,
            new PretrainOptions { Epochs = epochs, Minutes = minutes, BatchSize = batchSize, Temperature = temperature, Seed = seed }));

    /// <summary>SimCLR with every setting; <c>options.Pretrain.Method</c> is set to "simclr".</summary>
    public ImageEmbeddingEstimator SimClr(ImageEmbeddingEstimator.Options options) => Method("simclr", options);

    /// <summary>Rotation prediction (RotNet): a 4-way rotation classifier on the encoder. Arguments as for <see cref="SimClr(string, string, int, int, int, int, double?, int, double, int)"/>.</summary>
    public ImageEmbeddingEstimator Rotation(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256, int seed = 0) =>
        Rotation(Flat(outputColumnName, inputColumnName, imageHeight, imageWidth, channels, new PretrainOptions
            { Epochs = epochs, Minutes = minutes, BatchSize = batchSize, Seed = seed }));

    /// <summary>Rotation prediction with every setting.</summary>
    public ImageEmbeddingEstimator Rotation(ImageEmbeddingEstimator.Options options) => Method("rotation", options);

    /// <summary>Jigsaw puzzles over <paramref name="permutations"/> max-min-Hamming permutations of 3×3 tiles (images of 24 px or more).</summary>
    public ImageEmbeddingEstimator Jigsaw(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        int permutations = 100, int seed = 0) =>
        Jigsaw(Flat(outputColumnName, inputColumnName, imageHeight, imageWidth, channels, new PretrainOptions
            { Epochs = epochs, Minutes = minutes, BatchSize = batchSize, JigsawPermutations = permutations, Seed = seed }));

    /// <summary>Jigsaw puzzles with every setting.</summary>
    public ImageEmbeddingEstimator Jigsaw(ImageEmbeddingEstimator.Options options) => Method("jigsaw", options);

    /// <summary>Margin triplet loss on two views per image, negatives mined from the batch.</summary>
    public ImageEmbeddingEstimator Triplet(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        double margin = TripletMarginLoss.DefaultMargin, TripletMining mining = TripletMining.SemiHard, int seed = 0) =>
        Triplet(Flat(outputColumnName, inputColumnName, imageHeight, imageWidth, channels, new PretrainOptions
            { Epochs = epochs, Minutes = minutes, BatchSize = batchSize, Margin = margin, Mining = mining, Seed = seed }));

    /// <summary>Margin triplet loss with every setting.</summary>
    public ImageEmbeddingEstimator Triplet(ImageEmbeddingEstimator.Options options) => Method("triplet", options);

    /// <summary>Binary noise-contrastive estimation with <paramref name="noiseSamples"/> noise samples per positive pair.</summary>
    public ImageEmbeddingEstimator Nce(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        int noiseSamples = NceLoss.DefaultNoiseSamples, double temperature = NtXentLoss.DefaultTemperature, int seed = 0) =>
        Nce(Flat(outputColumnName, inputColumnName, imageHeight, imageWidth, channels, new PretrainOptions
            { Epochs = epochs, Minutes = minutes, BatchSize = batchSize, NoiseSamples = noiseSamples, Temperature = temperature, Seed = seed }));

    /// <summary>Binary NCE with every setting.</summary>
    public ImageEmbeddingEstimator Nce(ImageEmbeddingEstimator.Options options) => Method("nce", options);

    private ImageEmbeddingEstimator Method(string method, ImageEmbeddingEstimator.Options options)
    {
        options.Pretrain.Method = method;
        return new ImageEmbeddingEstimator(mlContext, options);
    }

    private static ImageEmbeddingEstimator.Options Flat(string outputColumnName, string inputColumnName, int imageHeight, int imageWidth,
        int channels, PretrainOptions pretrain) => new()
    {
        OutputColumnName = outputColumnName, InputColumnName = inputColumnName,
        ImageHeight = imageHeight, ImageWidth = imageWidth, Channels = channels, Pretrain = pretrain,
    };

    /// <summary>
    /// The linear probe: MapValueToKey → NormalizeMeanVariance → LbfgsMaximumEntropy (or SdcaMaximumEntropy) →
    /// MapKeyToValue, predicting <paramref name="labelColumnName"/>'s classes into "PredictedLabel".
    /// </summary>
    /// <param name="labelColumnName">The class column.</param>
    /// <param name="featureColumnName">The embedding column, a float vector.</param>
    /// <param name="trainer">L-BFGS (default) or SDCA multinomial logistic regression.</param>
    /// <param name="l2Regularization">L2 weight.</param>
    public LinearProbeEstimator LinearProbe(string labelColumnName = "Label", string featureColumnName = "Embedding",
        ProbeTrainer trainer = ProbeTrainer.Lbfgs, float l2Regularization = 1e-4f) =>
        LinearProbe(new LinearProbeEstimator.Options
        {
            LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, Trainer = trainer, L2Regularization = l2Regularization,
        });

    /// <summary>The linear probe with every setting.</summary>
    public LinearProbeEstimator LinearProbe(LinearProbeEstimator.Options options) => new(mlContext, options);
}
