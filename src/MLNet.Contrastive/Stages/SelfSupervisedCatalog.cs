using Microsoft.ML;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Selection;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Stages;

/// <summary>Entry point: <c>mlContext.SelfSupervised()</c>.</summary>
public static class MLContextExtensions
{
    /// <summary>Self-supervised pretraining estimators. (An extension on MLContext: the transforms catalog does not expose its environment.)</summary>
    public static SelfSupervisedCatalog SelfSupervised(this MLContext mlContext) => new(mlContext);
}

/// <summary>
/// Self-supervised methods as ML.NET estimators; each returns the same embedding stage. <see cref="Pretrain(MethodOptions, string, string, int, int, int, int, double?, int, int)"/>
/// takes any method's settings; the named methods are shortcuts with the method's main settings as arguments.
/// Every overload copies the settings it is given: changing the caller's objects later changes no estimator.
/// </summary>
public sealed class SelfSupervisedCatalog
{
    private readonly MLContext mlContext;

    internal SelfSupervisedCatalog(MLContext mlContext) => this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));

    /// <summary>
    /// Pretrains with the method of <paramref name="method"/> (e.g. <c>new ByolOptions()</c>) on the images of
    /// <paramref name="inputColumnName"/> (MLImage or image paths) and outputs <paramref name="outputColumnName"/>, a vector of D float32 values.
    /// </summary>
    /// <param name="method">The method and its settings.</param>
    /// <param name="outputColumnName">The embedding column.</param>
    /// <param name="inputColumnName">The image column (MLImage) or image-path column (text).</param>
    /// <param name="imageHeight">Images are resized to this height.</param>
    /// <param name="imageWidth">Images are resized to this width.</param>
    /// <param name="channels">1 (grayscale) or 3 (RGB).</param>
    /// <param name="epochs">Epochs, unless <paramref name="minutes"/> is given.</param>
    /// <param name="minutes">Wall-clock budget; overrides <paramref name="epochs"/>.</param>
    /// <param name="batchSize">Images per step.</param>
    /// <param name="seed">Seed for initialisation, shuffling and augmentation.</param>
    public ImageEmbeddingEstimator Pretrain(MethodOptions method, string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(method);
        return Pretrain(new ImageEmbeddingEstimator.Options
        {
            OutputColumnName = outputColumnName, InputColumnName = inputColumnName, ImageHeight = imageHeight, ImageWidth = imageWidth, Channels = channels,
            Pretrain = new PretrainOptions { Method = method, Run = { Epochs = epochs, Minutes = minutes, BatchSize = batchSize, Seed = seed }},
        });
    }

    /// <summary>Pretrains with every setting of the stage and the run; <c>options.Pretrain.Method</c> names the method.</summary>
    public ImageEmbeddingEstimator Pretrain(ImageEmbeddingEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new ImageEmbeddingEstimator(mlContext, options.Clone());
    }

    /// <summary>SimCLR (NT-Xent over two views) with temperature <paramref name="temperature"/>; other arguments as for <see cref="Pretrain(MethodOptions, string, string, int, int, int, int, double?, int, int)"/>.</summary>
    public ImageEmbeddingEstimator SimClr(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null,
        int batchSize = 256, double temperature = NtXentLoss.DefaultTemperature, int seed = 0) =>
        Pretrain(new SimClrOptions { Temperature = temperature }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>SimCLR with every setting; the method is set to SimCLR (with its defaults) unless <c>options.Pretrain.Method</c> already is.</summary>
    public ImageEmbeddingEstimator SimClr(ImageEmbeddingEstimator.Options options) => Named<SimClrOptions>(options);

    /// <summary>MoCo v2: InfoNCE against a queue of <paramref name="queueSize"/> momentum-encoded keys.</summary>
    public ImageEmbeddingEstimator MoCo(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        int queueSize = 4096, double temperature = 0.2, int seed = 0) =>
        Pretrain(new MoCoOptions { QueueSize = queueSize, Temperature = temperature }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>MoCo with every setting.</summary>
    public ImageEmbeddingEstimator MoCo(ImageEmbeddingEstimator.Options options) => Named<MoCoOptions>(options);

    /// <summary>BYOL: a predictor regresses a moving-average target's projection of the other view (no negatives).</summary>
    public ImageEmbeddingEstimator Byol(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        double baseMomentum = 0.99, int seed = 0) =>
        Pretrain(new ByolOptions { BaseMomentum = baseMomentum }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>BYOL with every setting.</summary>
    public ImageEmbeddingEstimator Byol(ImageEmbeddingEstimator.Options options) => Named<ByolOptions>(options);

    /// <summary>SimSiam: stop-gradient and a bottleneck predictor (no negatives, no target network).</summary>
    public ImageEmbeddingEstimator SimSiam(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256, int seed = 0) =>
        Pretrain(new SimSiamOptions(), outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>SimSiam with every setting.</summary>
    public ImageEmbeddingEstimator SimSiam(ImageEmbeddingEstimator.Options options) => Named<SimSiamOptions>(options);

    /// <summary>Barlow Twins: the cross-correlation of the two views' projections driven to the identity; <paramref name="lambda"/> null uses 1/D.</summary>
    public ImageEmbeddingEstimator BarlowTwins(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        double? lambda = null, int seed = 0) =>
        Pretrain(new BarlowTwinsOptions { Lambda = lambda }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>Barlow Twins with every setting.</summary>
    public ImageEmbeddingEstimator BarlowTwins(ImageEmbeddingEstimator.Options options) => Named<BarlowTwinsOptions>(options);

    /// <summary>VICReg: invariance, variance and covariance terms on the two views' projections (weights 25, 25, 1).</summary>
    public ImageEmbeddingEstimator VicReg(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256, int seed = 0) =>
        Pretrain(new VicRegOptions(), outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>VICReg with every setting.</summary>
    public ImageEmbeddingEstimator VicReg(ImageEmbeddingEstimator.Options options) => Named<VicRegOptions>(options);

    /// <summary>Rotation prediction (RotNet): a 4-way rotation classifier on the encoder.</summary>
    public ImageEmbeddingEstimator Rotation(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256, int seed = 0) =>
        Pretrain(new RotationOptions(), outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>Rotation prediction with every setting.</summary>
    public ImageEmbeddingEstimator Rotation(ImageEmbeddingEstimator.Options options) => Named<RotationOptions>(options);

    /// <summary>Jigsaw puzzles over <paramref name="permutations"/> max-min-Hamming permutations of 3×3 tiles (images of 24 px or more).</summary>
    public ImageEmbeddingEstimator Jigsaw(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        int permutations = 100, int seed = 0) =>
        Pretrain(new JigsawOptions { Permutations = permutations }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>Jigsaw puzzles with every setting.</summary>
    public ImageEmbeddingEstimator Jigsaw(ImageEmbeddingEstimator.Options options) => Named<JigsawOptions>(options);

    /// <summary>Margin triplet loss on two views per image, negatives mined from the batch.</summary>
    public ImageEmbeddingEstimator Triplet(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        double margin = TripletMarginLoss.DefaultMargin, TripletMining mining = TripletMining.SemiHard, int seed = 0) =>
        Pretrain(new TripletOptions { Margin = margin, Mining = mining }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>Margin triplet loss with every setting.</summary>
    public ImageEmbeddingEstimator Triplet(ImageEmbeddingEstimator.Options options) => Named<TripletOptions>(options);

    /// <summary>Binary noise-contrastive estimation with <paramref name="noiseSamples"/> noise samples per positive pair.</summary>
    public ImageEmbeddingEstimator Nce(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        int noiseSamples = NceLoss.DefaultNoiseSamples, double temperature = NtXentLoss.DefaultTemperature, int seed = 0) =>
        Pretrain(new NceOptions { NoiseSamples = noiseSamples, Temperature = temperature }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>Binary NCE with every setting.</summary>
    public ImageEmbeddingEstimator Nce(ImageEmbeddingEstimator.Options options) => Named<NceOptions>(options);

    /// <summary>SwAV: swapped prediction of Sinkhorn-Knopp codes over <paramref name="prototypes"/> prototypes, with <paramref name="localCrops"/> small crops per image (multi-crop).</summary>
    public ImageEmbeddingEstimator Swav(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        int prototypes = 100, int localCrops = 4, int seed = 0) =>
        Pretrain(new SwavOptions { Prototypes = prototypes, LocalCrops = localCrops }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>SwAV with every setting.</summary>
    public ImageEmbeddingEstimator Swav(ImageEmbeddingEstimator.Options options) => Named<SwavOptions>(options);

    /// <summary>DCL: SimCLR with the positive pair left out of NT-Xent's denominator; <paramref name="weighted"/> trains DCLW (positives weighted, σ 0.5).</summary>
    public ImageEmbeddingEstimator Dcl(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        double temperature = DecoupledContrastiveLoss.DefaultTemperature, bool weighted = false, int seed = 0) =>
        Pretrain(weighted ? new DclwOptions { Temperature = temperature } : new DclOptions { Temperature = temperature },
            outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>DCL with every setting (a <see cref="DclwOptions"/> method trains DCLW).</summary>
    public ImageEmbeddingEstimator Dcl(ImageEmbeddingEstimator.Options options) => Named<DclOptions>(options);

    /// <summary>NNCLR: SimCLR with each view's nearest neighbour in a support set of <paramref name="supportSize"/> earlier projections as the positive.</summary>
    public ImageEmbeddingEstimator Nnclr(string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256,
        int supportSize = 4096, double temperature = NnclrLoss.DefaultTemperature, int seed = 0) =>
        Pretrain(new NnclrOptions { SupportSize = supportSize, Temperature = temperature }, outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);

    /// <summary>NNCLR with every setting.</summary>
    public ImageEmbeddingEstimator Nnclr(ImageEmbeddingEstimator.Options options) => Named<NnclrOptions>(options);

    /// <summary>
    /// CLIP-style paired training: the images of <paramref name="inputColumnName"/> with the captions (text) or second
    /// images (MLImage) of <paramref name="pairedColumnName"/>, two towers and CLIP's symmetric InfoNCE; outputs the image
    /// encoder's embedding like every method. <c>PretrainedClip.From(transformer.Pretraining)</c> gives both towers for
    /// <see cref="ZeroShotClassify(PretrainedClip, IReadOnlyList{string}, string, string)"/>.
    /// </summary>
    public ImageEmbeddingEstimator Clip(string pairedColumnName = "Caption", string outputColumnName = "Embedding", string inputColumnName = "Image",
        int imageHeight = 28, int imageWidth = 28, int channels = 1, int epochs = 10, double? minutes = null, int batchSize = 256, int seed = 0)
    {
        var estimator = Pretrain(new ClipOptions(), outputColumnName, inputColumnName, imageHeight, imageWidth, channels, epochs, minutes, batchSize, seed);
        var options = estimator.Settings.Clone();
        options.PairedColumnName = pairedColumnName;
        return new ImageEmbeddingEstimator(mlContext, options);
    }

    /// <summary>CLIP-style paired training with every setting; <c>options.PairedColumnName</c> is required.</summary>
    public ImageEmbeddingEstimator Clip(ImageEmbeddingEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.PairedColumnName is null) throw new ArgumentException("Options.PairedColumnName: CLIP-style training needs the column of captions or second images.", nameof(options));
        return Named<ClipOptions>(options);
    }

    /// <summary>
    /// Zero-shot classification with a CLIP-style run: PredictedLabel is the class whose prompt (<paramref name="promptTemplate"/>
    /// filled with the class name) is nearest to the image in the joint space; no labelled image is needed.
    /// </summary>
    /// <param name="model">The CLIP-style run (<see cref="PretrainedClip.Load"/>, <see cref="PretrainedClip.From"/>).</param>
    /// <param name="classNames">The classes, in the order of Score's slots.</param>
    /// <param name="inputColumnName">The image column (MLImage) or image-path column (text).</param>
    /// <param name="promptTemplate">The prompt, with {0} where the class name goes.</param>
    public ZeroShotEstimator ZeroShotClassify(PretrainedClip model, IReadOnlyList<string> classNames, string inputColumnName = "Image",
        string promptTemplate = ZeroShotEstimator.DefaultPromptTemplate) =>
        ZeroShotClassify(new ZeroShotEstimator.Options { Model = model, ClassNames = classNames, InputColumnName = inputColumnName, PromptTemplates = [promptTemplate] });

    /// <summary>Zero-shot classification with every setting (several prompt templates, column names, the classifier's regularisation).</summary>
    public ZeroShotEstimator ZeroShotClassify(ZeroShotEstimator.Options options) => new(mlContext, options);

    /// <summary>
    /// The text tower of a CLIP-style run as a stage: the text of <paramref name="inputColumnName"/> → a unit-length
    /// joint-space embedding [P] in <paramref name="outputColumnName"/>, for text-to-image retrieval.
    /// </summary>
    public TextEmbeddingEstimator ClipTextEmbedding(PretrainedClip model, string inputColumnName = "Text", string outputColumnName = "TextEmbedding") =>
        new(mlContext, new TextEmbeddingEstimator.Options { Model = model, InputColumnName = inputColumnName, OutputColumnName = outputColumnName });

    /// <summary>
    /// The reconstruction energy of an MAE run: fitting calibrates on the images of <paramref name="inputColumnName"/> (the
    /// images to call normal); the stage adds <paramref name="outputColumnName"/>, a vector of one float32, high for
    /// images unlike them (noise, occlusion, unfamiliar content). See <see cref="Evaluation.ReconstructionEnergy"/>.
    /// </summary>
    /// <param name="model">The MAE run's folder or checkpoint.</param>
    /// <param name="outputColumnName">The energy column.</param>
    /// <param name="inputColumnName">The image column (MLImage) or image-path column (text).</param>
    public ReconstructionEnergyEstimator ReconstructionEnergy(string model, string outputColumnName = "Energy", string inputColumnName = "Image") =>
        ReconstructionEnergy(new ReconstructionEnergyEstimator.Options { Model = model, OutputColumnName = outputColumnName, InputColumnName = inputColumnName });

    /// <summary>The reconstruction energy with every setting (the masks' seed, where to keep the ONNX graph).</summary>
    public ReconstructionEnergyEstimator ReconstructionEnergy(ReconstructionEnergyEstimator.Options options) => new(mlContext, options);

    /// <summary>A copy of <paramref name="options"/> whose method is <typeparamref name="TMethod"/>: kept when it already is, else its defaults.</summary>
    private ImageEmbeddingEstimator Named<TMethod>(ImageEmbeddingEstimator.Options options) where TMethod : MethodOptions, new()
    {
        ArgumentNullException.ThrowIfNull(options);
        var copy = options.Clone();
        if (copy.Pretrain.Method is not TMethod) copy.Pretrain.Method = new TMethod();
        return new ImageEmbeddingEstimator(mlContext, copy);
    }

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

    /// <summary>
    /// Fine-tunes <paramref name="pretrained"/> (or, when null, a new encoder from scratch) with a classifier on the labelled
    /// images, and outputs ML.NET's multiclass columns Score [K] and PredictedLabel (see <see cref="FineTuningTrainer"/>).
    /// </summary>
    /// <param name="labelColumnName">The class column, a key type (MapValueToKey).</param>
    /// <param name="inputColumnName">The image column (MLImage) or image-path column (text).</param>
    /// <param name="pretrained">The encoder to start from, e.g. <c>PretrainedEncoder.Load("run")</c> or <c>PretrainedEncoder.From(stage.Pretraining)</c>.</param>
    /// <param name="epochs">Epochs over the labelled rows, unless <paramref name="minutes"/> is given; null: 20, or at least 500 steps with few labelled rows.</param>
    /// <param name="minutes">Wall-clock budget; overrides <paramref name="epochs"/>.</param>
    /// <param name="batchSize">Images per step.</param>
    /// <param name="seed">Seed for initialisation, shuffling and augmentation.</param>
    public FineTuningTrainer FineTune(string labelColumnName = "Label", string inputColumnName = "Image", PretrainedEncoder? pretrained = null,
        int? epochs = null, double? minutes = null, int batchSize = 128, int seed = 0) =>
        FineTune(new FineTuningTrainer.Options
        {
            LabelColumnName = labelColumnName, InputColumnName = inputColumnName, Pretrained = pretrained,
            Run = { Epochs = epochs, Minutes = minutes, BatchSize = batchSize, Seed = seed },
        });

    /// <summary>Fine-tuning with every setting (learning rates, frozen warm-up, label smoothing, validation and early stopping).</summary>
    public FineTuningTrainer FineTune(FineTuningTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new FineTuningTrainer(mlContext, options);
    }
    /// <summary>
    /// The <paramref name="budget"/> rows of <paramref name="embeddings"/> to label next, chosen by <paramref name="strategy"/>
    /// from the embeddings alone (no labels needed); rows in <paramref name="labelled"/> (an earlier round) are added to, never chosen.
    /// </summary>
    /// <param name="embeddings">One embedding per image, e.g. from <c>Embeddings.FromEncoder</c> or <see cref="ImageEmbedder.Embed"/>.</param>
    /// <param name="budget">How many images to choose.</param>
    /// <param name="strategy">Random, KMeans (default), TypiClust, ProbCover or KCenter.</param>
    /// <param name="labelled">Rows already labelled, or null.</param>
    /// <param name="seed">Seed of the strategy's random choices.</param>
    public int[] SelectForLabeling(Embeddings embeddings, int budget, SelectionStrategy strategy = SelectionStrategy.KMeans,
        IReadOnlyCollection<int>? labelled = null, int seed = 0) =>
        SelectForLabeling(embeddings, new LabelSelectionOptions { Budget = budget, Strategy = strategy, Labelled = labelled, Seed = seed });

    /// <summary>Selection with every setting of the strategy (TypiClust's neighbours, ProbCover's δ, …).</summary>
    public int[] SelectForLabeling(Embeddings embeddings, LabelSelectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return LabelSelection.Select(embeddings, options.Clone());
    }

    /// <summary>
    /// Selection among <paramref name="images"/>, embedded first by the exported encoder <paramref name="encoderOnnxPath"/>
    /// (ONNX Runtime; the images must have the encoder's channels and size, as <see cref="ImageEmbedder.InputShape"/> says).
    /// </summary>
    public int[] SelectForLabeling(string encoderOnnxPath, ImageStore images, LabelSelectionOptions options, ImageEmbedderOptions? embedderOptions = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        using var embedder = new ImageEmbedder(encoderOnnxPath, embedderOptions);
        return SelectForLabeling(embedder.Embed(images), options);
    }
}
