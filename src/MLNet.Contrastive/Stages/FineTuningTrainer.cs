using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// Fine-tuning as an ML.NET multiclass trainer. Starts from a pretrained encoder (or from a random one: the
/// supervised-from-scratch baseline with the same encoder), adds a linear classifier and trains both with
/// cross-entropy on the labelled images — after a frozen warm-up, the encoder at its own learning rate — on
/// crop-and-flip views; given a validation set, it keeps the epoch with the best validation accuracy and stops when
/// <see cref="Options.EarlyStoppingPatience"/> epochs bring no better one. With <see cref="Options.FixMatch"/> the unlabelled
/// rows train too (semi-supervised fine-tuning); with distillation a student then learns the network's predictions on them.
/// <para>
/// The fitted stage is a chain of ML.NET's own transforms: [LoadImages] → ResizeImages → [ConvertToGrayscale] →
/// ExtractPixels → ApplyOnnxModel (the fine-tuned network, encoder and classifier: <see cref="Options.FeatureColumnName"/>,
/// its class logits, [K] float32) → NormalizeMeanVariance → LbfgsMaximumEntropy, which outputs ML.NET's multiclass
/// columns: Score ([K] float32, slots named after the classes) and PredictedLabel (the label column's key type). ML.NET
/// keeps its multiclass predictors' constructors internal and its ONNX transform cannot output a scalar key, so
/// LbfgsMaximumEntropy, fitted on the network's logits of the labelled images as they are (no augmentation), turns them
/// into ML.NET's columns: a linear map of the logits, which on full Fashion-MNIST scored within 0.1 point of the network's
/// own argmax. The chain saves into one model.zip that a plain ML.NET app loads.
/// </para>
/// The label column must be a key (MapValueToKey), as for ML.NET's multiclass trainers; MapKeyToValue on PredictedLabel
/// gives the label's values back, and <c>MulticlassClassification.Evaluate</c> works on the output.
/// </summary>
public sealed class FineTuningTrainer : IEstimator<FineTuningTransformer>
{
    /// <summary>Settings of fine-tuning; every property has a documented default.</summary>
    public sealed class Options
    {
        /// <summary>The class column, a key type (MapValueToKey). Default "Label".</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>The image column: MLImage, or text holding image paths. Default "Image".</summary>
        public string InputColumnName { get; set; } = "Image";

        /// <summary>The fine-tuned network's output column: class logits ([K] float32, mean-variance normalised before ML.NET's classifier). Default "Features".</summary>
        public string FeatureColumnName { get; set; } = "Features";

        /// <summary>The encoder to start from (<see cref="PretrainedEncoder.Load"/>, <see cref="PretrainedEncoder.From(PretrainResult)"/>); null trains a new encoder from scratch. Default null.</summary>
        public PretrainedEncoder? Pretrained { get; set; }

        /// <summary>Shape of the encoder trained from scratch (ignored with <see cref="Pretrained"/>); null: <see cref="EncoderOptions.For"/> the images. Default null.</summary>
        public EncoderOptions? Encoder { get; set; }

        /// <summary>Height images are resized to; null: the height the pretrained encoder was trained at, else 28. Default null.</summary>
        public int? ImageHeight { get; set; }

        /// <summary>Width images are resized to; null: the pretrained encoder's, else 28. Default null.</summary>
        public int? ImageWidth { get; set; }

        /// <summary>1 (grayscale) or 3 (RGB); null: the pretrained encoder's input channels, else 1. Default null.</summary>
        public int? Channels { get; set; }

        /// <summary>
        /// The run's budget, batch, learning rate, weight decay, seed, threads and device (<see cref="RunOptions"/>, declared
        /// once for every kind of run). Epochs count passes over the labelled rows (with FixMatch, over its training rows); null
        /// takes 20, or as many as <see cref="DefaultMinimumSteps"/> steps take when the rows are few — 600 labelled images at
        /// batch 128 are 4 steps an epoch, and 20 epochs of them stopped short of what fine-tuning reaches. The batch is at most
        /// the labelled rows; the learning rate is the classifier's (AdamW, warm-up then cosine decay). A budget in minutes
        /// leaves out validation. Default <see cref="RunOptions.FineTuning"/>: epochs from the data, 128 images, 1e-3.
        /// </summary>
        public RunOptions Run { get; set; } = RunOptions.FineTuning();

        /// <summary>The fewest steps a run with the default <see cref="RunOptions.Epochs"/> takes.</summary>
        public const int DefaultMinimumSteps = 500;

        /// <summary>
        /// The epochs fine-tuning on <paramref name="labelled"/> labelled and <paramref name="unlabelled"/> unlabelled images
        /// runs: <see cref="RunOptions.Epochs"/>, or the default for that many training rows (with FixMatch, the labelled ones repeated).
        /// </summary>
        public int EpochsFor(int labelled, int unlabelled = 0)
        {
            if (Run.Epochs is { } epochs) return epochs;
            var rows = FixMatch ? unlabelled + LabelledCopies(labelled, unlabelled) * labelled : labelled;
            var stepsPerEpoch = Math.Max(1, rows / Math.Max(1, Math.Min(Run.BatchSize, rows)));
            return Math.Max(20, (DefaultMinimumSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        }

        /// <summary>How often FixMatch's rows hold each labelled image: about <see cref="UnlabelledRatio"/> unlabelled images per labelled one.</summary>
        internal int LabelledCopies(int labelled, int unlabelled) => Math.Max(1, (int)Math.Round((double)unlabelled / (UnlabelledRatio * labelled)));

        /// <summary>
        /// The classifier network's settings, declared once in <see cref="SupervisedOptions"/>: label smoothing, the
        /// pretrained encoder's learning-rate factor and frozen warm-up, strong views, FixMatch's confidence threshold and
        /// weight. Its <see cref="SupervisedOptions.Classes"/> is the label column's. Default <see cref="SupervisedOptions.FineTuning"/>:
        /// the encoder at the classifier's rate (at a few minutes' budget a lower rate lost 2–3 points on the sample), frozen
        /// for the first 10 % of training, crop 0.6–1 and flip views, label smoothing 0.1 (0 with <see cref="FixMatch"/>).
        /// </summary>
        public SupervisedOptions Network { get; set; } = SupervisedOptions.FineTuning();

        /// <summary>
        /// Semi-supervised fine-tuning (FixMatch, Sohn et al. 2020): the rows whose label is missing (key 0; −1 in an
        /// <see cref="ImageStore"/>) train too. The class the network gives a crop-and-flip view of an unlabelled image, where
        /// its probability reaches the <see cref="Network"/>'s <see cref="SupervisedOptions.ConfidenceThreshold"/>, is the target of
        /// a view of the self-supervised recipe (crops down to 25 %, colour jitter, noise; blur above 64 px), weighted by its
        /// <see cref="SupervisedOptions.UnlabelledWeight"/>. The
        /// labelled rows are repeated so that a batch holds about <see cref="UnlabelledRatio"/> unlabelled images per labelled
        /// one; an epoch is a pass over all of them. With every row labelled it is plain fine-tuning. Default false.
        /// </summary>
        public bool FixMatch { get; set; }

        /// <summary>Unlabelled images per labelled one in a FixMatch batch (FixMatch's μ; the labelled rows are repeated to reach it). Default 3.</summary>
        public int UnlabelledRatio { get; set; } = 3;

        /// <summary>
        /// Epochs of distillation after fine-tuning, over the labelled and the unlabelled images (SimCLRv2's third step): the
        /// fine-tuned network gives every unlabelled image its class probabilities, and a student — a copy of the fine-tuned
        /// encoder with a new classifier, trained as in fine-tuning — learns them, and the labelled images' own labels, with
        /// the same cross-entropy on new views. Unlabelled images are the rows whose label is missing (key 0; −1 in an
        /// <see cref="ImageStore"/>). 0: no distillation, and a missing label is an error. Ignored when
        /// <see cref="DistillationMinutes"/> is set. Default 0.
        /// </summary>
        public int DistillationEpochs { get; set; }

        /// <summary>Wall-clock budget of distillation in minutes, on top of the run's (<see cref="RunOptions.Minutes"/>); overrides <see cref="DistillationEpochs"/>. Default null.</summary>
        public double? DistillationMinutes { get; set; }

        /// <summary>Whether distillation follows fine-tuning (<see cref="DistillationEpochs"/> or <see cref="DistillationMinutes"/> is set).</summary>
        public bool Distils => DistillationMinutes is not null || DistillationEpochs > 0;

        /// <summary>Whether training uses the rows without a label (<see cref="FixMatch"/> or distillation).</summary>
        public bool UsesUnlabelled => FixMatch || Distils;

        /// <summary>
        /// Fine-tuning runs whose weights are averaged into the one network the stage scores with (a uniform model soup,
        /// <see cref="WeightAveraging"/>): run i is the same fine-tuning with seed <see cref="RunOptions.Seed"/> + i (its own
        /// classifier initialisation, image order and views), all from the same <see cref="Pretrained"/> encoder. Each run takes
        /// the whole budget, so training takes that many times as long; scoring costs what one network costs. With
        /// distillation, the averaged network is the teacher. Needs a pretrained encoder: networks trained from different random
        /// weights cannot be averaged. Default 1 (no averaging).
        /// </summary>
        public int Soup { get; set; } = 1;

        /// <summary>Labelled images (same image and label columns, same key type) scored after every epoch for early stopping. Default null.</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>Epochs without a better validation accuracy before training stops (with <see cref="ValidationSet"/>). Default 5.</summary>
        public int EarlyStoppingPatience { get; set; } = 5;

        /// <summary>L2 regularisation of the LbfgsMaximumEntropy classifier on the logits in the fitted stage. Default 1e-4.</summary>
        public float L2Regularization { get; set; } = 1e-4f;

        /// <summary>Where to keep the exported network (pixels → class logits); null uses a temporary file that the transformer deletes when disposed. Default null.</summary>
        public string? OnnxPath { get; set; }

        /// <summary>Hears every training step (epoch, loss, learning rate, images/s, time left). Default null.</summary>
        public IProgress<PretrainProgress>? Progress { get; set; }

        /// <summary>A copy (the pretrained encoder and validation set are shared; the run settings, encoder shape and network settings are copied).</summary>
        public Options Clone()
        {
            var copy = (Options)MemberwiseClone();
            copy.Run = Run with { };
            copy.Encoder = Encoder?.Clone();
            copy.Network = (SupervisedOptions)Network.Clone();
            return copy;
        }
    }

    private readonly MLContext mlContext;
    private readonly Options options;

    /// <summary>A fine-tuning trainer with its own copy of <paramref name="options"/>.</summary>
    public FineTuningTrainer(MLContext mlContext, Options options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        ArgumentNullException.ThrowIfNull(options);
        if (options.Network is null) throw new ArgumentNullException(nameof(options), "Options.Network must hold the network's settings (SupervisedOptions.FineTuning() by default).");
        // Before the copy: settings such as a NaN threshold cannot be copied (the copy goes through JSON).
        options.Network.Validate();
        this.options = options.Clone();
        if (options.EarlyStoppingPatience <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.EarlyStoppingPatience, "EarlyStoppingPatience must be positive.");
        if (options.Run is null) throw new ArgumentNullException(nameof(options), "Options.Run must hold the run's settings (RunOptions.FineTuning() by default).");
        if (options.Run.Epochs is <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.Run.Epochs, "Epochs must be positive, or null for the default.");
        if (options.DistillationEpochs < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.DistillationEpochs, "DistillationEpochs must be 0 (no distillation) or more.");
        if (options.DistillationMinutes is { } minutes && !(minutes > 0 && double.IsFinite(minutes)))
            throw new ArgumentOutOfRangeException(nameof(options), minutes, "DistillationMinutes must be a positive number of minutes.");
        if (options.Soup < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Soup, "Soup must be at least 1 (one fine-tuning run, no averaging).");
        if (options.Soup > 1 && options.Pretrained is null)
            throw new ArgumentException($"Soup = {options.Soup} averages fine-tuning runs that start from the same pretrained encoder; "
                + "from scratch each run starts from its own random weights, which cannot be averaged. Set Pretrained, or Soup = 1.", nameof(options));
        if (options.UnlabelledRatio < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.UnlabelledRatio, "UnlabelledRatio must be at least 1.");
        // The network's own settings fail here, before any image is read.
        Method(classes: 0, pretrained: true).Validate();
        LoadOptions.Validate();
    }

    private ImageLoadOptions LoadOptions
    {
        get
        {
            var shape = options.Pretrained?.ImageShape;
            return new ImageLoadOptions
            {
                Height = options.ImageHeight ?? shape?.Height ?? 28,
                Width = options.ImageWidth ?? shape?.Width ?? 28,
                Channels = options.Channels ?? options.Pretrained?.EncoderOptions.InputChannels ?? options.Encoder?.InputChannels ?? 1,
            };
        }
    }

    /// <summary>Fine-tunes on the labelled rows of <paramref name="input"/> (then distils on all of them, with distillation) and returns the scoring stage.</summary>
    public FineTuningTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (train, label) = Read(input, nameof(input));
        var validation = options.ValidationSet is { } set ? Read(set, nameof(Options.ValidationSet), label.Type).Store : null;
        return Fit(train, label, input, validation);
    }

    /// <summary>
    /// Fine-tunes on decoded images whose labels index <paramref name="classNames"/> (e.g. an image folder or IDX files
    /// read by <see cref="ImageStore.Load"/>); with distillation, images labelled −1 are the unlabelled ones. The stage takes
    /// image paths in <see cref="Options.InputColumnName"/> and predicts keys whose values are the class names.
    /// <paramref name="validation"/> (labelled the same way, every image) drives early stopping.
    /// </summary>
    public FineTuningTransformer Fit(ImageStore labelled, IReadOnlyList<string> classNames, ImageStore? validation = null)
    {
        ArgumentNullException.ThrowIfNull(labelled);
        ArgumentNullException.ThrowIfNull(classNames);
        if (labelled.Labels is null) throw new ArgumentException("Fine-tuning needs labelled images.", nameof(labelled));
        if (labelled.Labels.Concat(validation?.Labels ?? []).Any(l => l >= classNames.Count))
            throw new ArgumentException($"A label is beyond the {classNames.Count} class names.", nameof(classNames));
        CheckUnlabelled(labelled.Labels, nameof(labelled));
        if (validation?.Labels is { } validationLabels && Array.IndexOf(validationLabels, -1) is var row and >= 0)
            throw new ArgumentException($"Validation image {row} has no label; every validation image needs one.", nameof(validation));
        var schema = SchemaDefinition.Create(typeof(ClassRow));
        schema[nameof(ClassRow.Path)].ColumnName = options.InputColumnName;
        schema[nameof(ClassRow.Label)].ColumnName = options.LabelColumnName;
        var classes = mlContext.Data.LoadFromEnumerable(classNames.Select(name => new ClassRow { Label = name }).ToList(), schema);
        // Keys by occurrence: class i is key i + 1, named classNames[i].
        var keyed = mlContext.Transforms.Conversion.MapValueToKey(options.LabelColumnName).Fit(classes).Transform(classes);
        return Fit(labelled, keyed.Schema[options.LabelColumnName], keyed, validation);
    }

    private FineTuningTransformer Fit(ImageStore train, DataViewSchema.Column label, IDataView schema, ImageStore? validation)
    {
        var classes = (int)((KeyDataViewType)label.Type).Count;
        var labelledRows = Enumerable.Range(0, train.Count).Where(i => train.Labels![i] >= 0).ToList();
        var labelled = options.UsesUnlabelled ? train.Subset(labelledRows) : train;
        var rows = options.FixMatch ? FixMatchRows(train, labelledRows) : labelled;
        var epochs = options.EpochsFor(labelledRows.Count, train.Count - labelledRows.Count);
        var (result, network, best) = Train(rows, options.Pretrained, classes, epochs, options.Run.Minutes, validation);
        if (options.Soup > 1)
        {
            var members = new List<Supervised>();
            try
            {
                for (var member = 1; member < options.Soup; member++)
                    members.Add(Train(rows, options.Pretrained, classes, epochs, options.Run.Minutes, validation, options.Run.Seed + member).Network);
                WeightAveraging.Average(network, members);
            }
            finally
            {
                foreach (var member in members) member.Dispose();
            }
        }
        if (options.Distils)
        {
            // The teacher's probabilities for the unlabelled images, the labels themselves for the labelled ones.
            var probabilities = Probabilities(network, train);
            for (var i = 0; i < train.Count; i++)
                if (train.Labels![i] is var known and >= 0)
                    for (var k = 0; k < classes; k++) probabilities[(long)i * classes + k] = k == known ? 1 : 0;
            var teacher = network;
            (result, network, best) = Train(train.WithLabelProbabilities(probabilities, train.LabelNames), PretrainedEncoder.From(result),
                classes, options.DistillationEpochs, options.DistillationMinutes, validation);
            teacher.Dispose();
        }

        // On the network's logits ML.NET's classifier scores as the network does; refitted on the 768-d embedding of few
        // labelled images it lost 1 point at 1 % of Fashion-MNIST's labels.
        var classifier = mlContext.Transforms.NormalizeMeanVariance(options.FeatureColumnName)
            .Append(mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = label.Name, FeatureColumnName = options.FeatureColumnName, L2Regularization = options.L2Regularization,
            }))
            .Fit(KeyedFeatures.Create(mlContext, FineTuningTransformer.Logits(network, labelled), label, options.FeatureColumnName));
        // The stage scores images as the encoder saw them: at the training images' size (an ImageStore brings its own,
        // which from scratch need not be the 28 × 28 default).
        var encoderStage = ImageEmbeddingEstimator.CreateStage(mlContext, schema, result, new ImageEmbeddingEstimator.Options
        {
            OutputColumnName = options.FeatureColumnName, InputColumnName = options.InputColumnName,
            ImageHeight = train.Height, ImageWidth = train.Width, Channels = train.Channels, OnnxPath = options.OnnxPath,
        }, network.Classifier);
        return new FineTuningTransformer(encoderStage, network, new TransformerChain<ITransformer>([.. classifier]), label, options.FeatureColumnName,
            best?.Accuracies ?? [], best?.BestEpoch);
    }

    /// <summary>
    /// FixMatch's training rows: every image (the unlabelled ones labelled −1), and the labelled ones again as often as it
    /// takes for about <see cref="Options.UnlabelledRatio"/> unlabelled images per labelled one.
    /// </summary>
    private ImageStore FixMatchRows(ImageStore train, List<int> labelledRows)
    {
        var copies = options.LabelledCopies(labelledRows.Count, train.Count - labelledRows.Count);
        return train.Subset([.. Enumerable.Range(0, train.Count), .. Enumerable.Repeat(labelledRows, copies - 1).SelectMany(rows => rows)]);
    }

    /// <summary>
    /// Trains a classifier network on <paramref name="data"/> (hard or soft labels) from <paramref name="initialization"/>
    /// (null: from scratch) with <paramref name="seed"/> (null: the run options'); with <paramref name="validation"/>, the best epoch's weights, in eval mode.
    /// </summary>
    private (PretrainResult Result, Supervised Network, EarlyStopping? Best) Train(ImageStore data, PretrainedEncoder? initialization, int classes,
        int epochs, double? minutes, ImageStore? validation, int? seed = null)
    {
        var pretrained = initialization is not null;
        var run = new PretrainOptions
        {
            Method = Method(classes, pretrained),
            Run = options.Run with { Epochs = epochs, Minutes = minutes, BatchSize = Math.Min(options.Run.BatchSize, data.Count), Seed = seed ?? options.Run.Seed },
            Initialization = initialization, Encoder = pretrained ? null : options.Encoder?.Clone(),
        };
        using var best = validation is null ? null : new EarlyStopping(validation, options.EarlyStoppingPatience);
        if (best is not null) run.EpochCallbacks.Add(best);
        var result = new Pretrainer(run, mlContext).Fit(data, options.Progress);
        var network = (Supervised)result.Method;
        best?.RestoreBest(network);
        return (result, network, best);
    }

    /// <summary>
    /// The network's settings resolved for this run: the label column's classes, the label smoothing's default, and a
    /// pretrained encoder's own learning rate and frozen phase (none from scratch).
    /// </summary>
    private SupervisedOptions Method(int classes, bool pretrained)
    {
        var network = (SupervisedOptions)options.Network.Clone();
        network.Classes = classes;
        network.LabelSmoothing ??= options.FixMatch ? 0 : 0.1;
        if (!pretrained) (network.EncoderLearningRateFactor, network.FrozenEncoderFraction) = (1, 0);
        return network;
    }

    /// <summary>The network's class probabilities for every image, [N, K] row-major (eval mode, no gradients, in batches).</summary>
    private static float[] Probabilities(Supervised network, ImageStore images) =>
        Embeddings.FromModule(network, x => nn.functional.softmax(network.Logits(x), 1), (int)network.Classifier.out_features, images).Values;

    /// <summary>
    /// The output schema before fitting: the input's columns, <see cref="Options.FeatureColumnName"/>, Score and
    /// PredictedLabel, with ML.NET's own checks (and wording) of the image and label columns.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var load = LoadOptions;
        // The encoder's output stands in as the pixel vector (also a known-size float vector) for the classifier's own schema check.
        var encoded = new ImageEmbeddingEstimator(mlContext, new ImageEmbeddingEstimator.Options
        {
            OutputColumnName = options.FeatureColumnName, InputColumnName = options.InputColumnName,
            ImageHeight = load.Height, ImageWidth = load.Width, Channels = load.Channels,
        }).GetOutputSchema(inputSchema);
        return mlContext.Transforms.NormalizeMeanVariance(options.FeatureColumnName)
            .Append(mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(options.LabelColumnName, options.FeatureColumnName))
            .GetOutputSchema(encoded);
    }

    /// <summary>The images of <paramref name="data"/> labelled with their class indices (key − 1), after checking the label column.</summary>
    private (ImageStore Store, DataViewSchema.Column Label) Read(IDataView data, string argument, DataViewType? expectedLabelType = null)
    {
        var label = data.Schema.GetColumnOrNull(options.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException(argument, $"Could not find label column '{options.LabelColumnName}'");
        if (label.Type is not KeyDataViewType { RawType: var raw, Count: >= 2 } || raw != typeof(uint))
            throw new ArgumentOutOfRangeException(argument,
                $"Schema mismatch for label column '{label.Name}': expected Key<UInt32> of two or more classes, got {label.Type} (map the labels with MapValueToKey first)");
        if (expectedLabelType is not null && !label.Type.Equals(expectedLabelType))
            throw new ArgumentOutOfRangeException(argument, $"Schema mismatch for label column '{label.Name}': expected {expectedLabelType} like the training data, got {label.Type}");
        var store = ImageStore.FromDataView(mlContext, data, options.InputColumnName, null, LoadOptions);
        var keys = data.GetColumn<uint>(label.Name).ToArray();
        var labels = keys.Select(k => (int)k - 1).ToArray();
        if (expectedLabelType is not null && Array.IndexOf(labels, -1) is var missing and >= 0)
            throw new ArgumentException($"Row {missing} of label column '{label.Name}' has no class (a missing key); every validation row needs one.", argument);
        CheckUnlabelled(labels, argument);
        return (store.WithLabels(labels, null), label);
    }

    /// <summary>Without FixMatch or distillation every image needs a label; with them, some must have one.</summary>
    private void CheckUnlabelled(int[] labels, string argument)
    {
        var row = Array.IndexOf(labels, -1);
        if (row >= 0 && !options.UsesUnlabelled)
            throw new ArgumentException(
                $"Row {row} of label column '{options.LabelColumnName}' has no class (a missing key); every row needs one, unless FixMatch or distillation (DistillationEpochs or DistillationMinutes) uses the unlabelled rows.", argument);
        if (labels.All(l => l < 0)) throw new ArgumentException($"Label column '{options.LabelColumnName}' has no labelled row.", argument);
    }

    private sealed class ClassRow
    {
        public string Path { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
