using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// Zero-shot classification with a CLIP-style run: each class is described by prompts ("a photo of a {0}"), the text
/// tower embeds them, and an image's class is the prompt embedding nearest to its image-tower embedding. No labelled
/// image is needed. The fitted stage is a chain of ML.NET's own transforms: [LoadImages] → ResizeImages →
/// [ConvertToGrayscale] → ExtractPixels → ApplyOnnxModel (image tower and the prompts' embeddings: the cosine
/// similarity to each class, <see cref="Options.SimilarityColumnName"/>, [C] float32) → a multiclass classifier that
/// outputs ML.NET's Score ([C], slots named after the classes) and PredictedLabel (a key whose values are the class names).
/// <para>
/// ML.NET keeps its multiclass predictors' constructors internal, so the classifier is LbfgsMaximumEntropy (no L1)
/// fitted on one row per class whose similarity vector is that class's ideal, the unit vector e_c. The fit is
/// symmetric under any relabelling of the classes, so its weights are a·I + b·11ᵀ with a &gt; 0, and its PredictedLabel
/// is the class of largest similarity — the nearest prompt — up to float rounding; Score ranks the classes as the
/// similarities do. The chain saves into one model.zip that a plain ML.NET app loads.
/// </para>
/// </summary>
public sealed class ZeroShotEstimator : IEstimator<ZeroShotTransformer>
{
    /// <summary>Settings of zero-shot classification; every property except the model and the classes has a documented default.</summary>
    public sealed class Options
    {
        /// <summary>The CLIP-style run (text pairing); required.</summary>
        public PretrainedClip? Model { get; set; }

        /// <summary>The class names, in the order of the output's slots and key values; required, at least two, distinct.</summary>
        public IReadOnlyList<string> ClassNames { get; set; } = [];

        /// <summary>Prompt templates, each with {0} where the class name goes; a class's embedding is the normalised mean of its prompts'. Default ["a photo of a {0}"].</summary>
        public IReadOnlyList<string> PromptTemplates { get; set; } = [DefaultPromptTemplate];

        /// <summary>The image column: MLImage, or text holding image paths. Default "Image".</summary>
        public string InputColumnName { get; set; } = "Image";

        /// <summary>The cosine similarity of the image to each class's prompts, [C] float32. Default "Similarity".</summary>
        public string SimilarityColumnName { get; set; } = "Similarity";

        /// <summary>L2 regularisation of the classifier on the similarities; smaller gives sharper Score probabilities. Default 1e-3.</summary>
        public float L2Regularization { get; set; } = 1e-3f;

        /// <summary>Where to keep the exported zero-shot graph; null uses a temporary file that the transformer deletes when disposed. Default null.</summary>
        public string? OnnxPath { get; set; }

        /// <summary>A copy (the model is shared).</summary>
        public Options Clone() => (Options)MemberwiseClone();
    }

    /// <summary>CLIP's basic prompt.</summary>
    public const string DefaultPromptTemplate = "a photo of a {0}";

    private readonly MLContext mlContext;
    private readonly Options options;

    /// <summary>An estimator with its own copy of <paramref name="options"/>.</summary>
    public ZeroShotEstimator(MLContext mlContext, Options options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        this.options = options?.Clone() ?? throw new ArgumentNullException(nameof(options));
        PretrainedClip.WithTextTower(this.options.Model, "zero-shot classification");
        if (this.options.ClassNames.Count < 2 || this.options.ClassNames.Distinct().Count() != this.options.ClassNames.Count || this.options.ClassNames.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException($"Options.ClassNames must hold at least two distinct, non-empty names; got [{string.Join(", ", this.options.ClassNames)}].", nameof(options));
        if (this.options.PromptTemplates.Count == 0 || this.options.PromptTemplates.Any(t => !t.Contains("{0}", StringComparison.Ordinal)))
            throw new ArgumentException("Options.PromptTemplates must hold at least one template, each with {0} where the class name goes.", nameof(options));
    }

    /// <summary>
    /// The class prompts' unit-length text-tower embeddings [C, P]: each template filled with each class name, featurized
    /// by <see cref="TextFeaturization"/>, embedded, averaged over the templates and normalised again (CLIP's prompt ensembling).
    /// </summary>
    public static Tensor PromptEmbeddings(MLContext mlContext, PretrainedClip model, IReadOnlyList<string> classNames, IReadOnlyList<string> templates)
    {
        var clip = model.Model;
        var bits = ((Methods.ClipOptions)clip.Options).TextBits;
        var prompts = classNames.SelectMany(name => templates.Select(t => string.Format(System.Globalization.CultureInfo.InvariantCulture, t, name))).ToList();
        var features = TextFeaturization.Featurize(mlContext, prompts, bits);
        using var pause = CollectionPause.Begin();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        clip.eval();
        var embeddings = clip.PairedEmbeddings(tensor(features, [prompts.Count, 1L << bits])).view(classNames.Count, templates.Count, -1).mean([1]);
        return nn.functional.normalize(embeddings, dim: 1).MoveToOuterDisposeScope();
    }

    /// <summary>Embeds the prompts, exports the zero-shot graph and fits the chain on <paramref name="input"/>'s schema (no rows are read).</summary>
    public ZeroShotTransformer Fit(IDataView input)
    {
        var model = options.Model!;
        var column = input.Schema.GetColumnOrNull(options.InputColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Could not find input column '{options.InputColumnName}'");
        var classes = options.ClassNames.Count;
        var prompts = PromptEmbeddings(mlContext, model, options.ClassNames, options.PromptTemplates);
        var taken = input.Schema.Select(c => c.Name).Concat([options.SimilarityColumnName, "Score", "PredictedLabel"]).ToHashSet();
        var (height, width) = (model.ImageShape.Height, model.ImageShape.Width);
        var (preprocessing, pixels, helpers) = ImageEmbeddingEstimator.ImageChain(mlContext, taken, column.Type is TextDataViewType,
            options.InputColumnName, height, width, model.ImageShape.Channels);
        var ownsFile = options.OnnxPath is null;
        var onnxPath = options.OnnxPath ?? Path.Combine(Path.GetTempPath(), $"mlnet-contrastive-{Guid.NewGuid():N}.onnx");
        try
        {
            // Flattened rows, declared [C]: ApplyOnnxModel scores one row at a time and types the output as a plain vector.
            var graph = ClipOnnxExporter.ImageTower(model.Model, new EncoderOnnxOptions
            {
                InputName = pixels, OutputName = options.SimilarityColumnName, Height = height, Width = width, FlatOutput = true,
            }, prompts);
            AtomicFile.WriteAllBytes(onnxPath, Google.Protobuf.MessageExtensions.ToByteArray(graph));
            var scoring = preprocessing
                .Append(mlContext.Transforms.ApplyOnnxModel([options.SimilarityColumnName], [pixels], onnxPath,
                    new Dictionary<string, int[]> { [options.SimilarityColumnName] = [classes] }, gpuDeviceId: null, fallbackToCpu: false))
                .Append(mlContext.Transforms.DropColumns([.. helpers]))
                .Fit(input);
            var classifier = NearestPromptClassifier(classes);
            var chain = new TransformerChain<ITransformer>([.. scoring, classifier]);
            return new ZeroShotTransformer(chain, model, options.ClassNames, prompts, onnxPath, ownsFile);
        }
        catch
        {
            if (ownsFile) File.Delete(onnxPath);
            throw;
        }
    }

    /// <summary>LbfgsMaximumEntropy fitted on the C rows (similarity e_c, label class c); see the class remarks.</summary>
    private ITransformer NearestPromptClassifier(int classes)
    {
        var (trainer, rows) = Classifier(classes);
        return trainer.Fit(rows);
    }

    /// <summary>The classifier's trainer and its C training rows, the label a key whose values are the class names in order.</summary>
    private (IEstimator<ITransformer> Trainer, IDataView Rows) Classifier(int classes)
    {
        var definition = SchemaDefinition.Create(typeof(ClassRow));
        definition[nameof(ClassRow.Similarity)].ColumnName = options.SimilarityColumnName;
        definition[nameof(ClassRow.Similarity)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, classes);
        var rows = mlContext.Data.LoadFromEnumerable(Enumerable.Range(0, classes).Select(c =>
        {
            var similarity = new float[classes];
            similarity[c] = 1;
            return new ClassRow { Similarity = similarity, ClassLabel = options.ClassNames[c] };
        }), definition);
        var classNames = mlContext.Data.LoadFromEnumerable(options.ClassNames.Select(name => new ClassName { Name = name }));
        var keyed = mlContext.Transforms.Conversion.MapValueToKey(nameof(ClassRow.ClassLabel), nameof(ClassRow.ClassLabel), keyData: classNames)
            .Fit(rows).Transform(rows);
        var trainer = mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new Microsoft.ML.Trainers.LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = nameof(ClassRow.ClassLabel), FeatureColumnName = options.SimilarityColumnName, L1Regularization = 0,
            L2Regularization = options.L2Regularization, OptimizationTolerance = 1e-8f, NumberOfThreads = 1,
        });
        return (trainer, keyed);
    }

    /// <summary>
    /// The output schema before fitting: the input's columns, the similarities and ML.NET's multiclass columns (Score,
    /// PredictedLabel); the image transforms check the input column with their schema-mismatch wording.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var column = inputSchema.FirstOrDefault(c => c.Name == options.InputColumnName);
        if (column.Name is null)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find input column '{options.InputColumnName}'");
        var model = options.Model!;
        var taken = inputSchema.Select(c => c.Name).Concat([options.SimilarityColumnName]).ToHashSet();
        var (preprocessing, pixels, helpers) = ImageEmbeddingEstimator.ImageChain(mlContext, taken, column.ItemType is TextDataViewType,
            options.InputColumnName, model.ImageShape.Height, model.ImageShape.Width, model.ImageShape.Channels);
        // SchemaShape.Column has no public constructor: the pixels, concatenated under the similarities' name, stand in
        // for that float vector, and the classifier's training label column lends its key type for the trainer's check.
        var scored = preprocessing.Append(mlContext.Transforms.Concatenate(options.SimilarityColumnName, pixels))
            .Append(mlContext.Transforms.DropColumns([.. helpers]))
            .GetOutputSchema(inputSchema);
        var (trainer, rows) = Classifier(options.ClassNames.Count);
        if (ShapeOfSchema?.Invoke(null, [rows.Schema]) is not SchemaShape rowShape) return scored;
        var label = rowShape.First(c => c.Name == nameof(ClassRow.ClassLabel));
        var output = trainer.GetOutputSchema(new SchemaShape(scored.Where(c => c.Name != label.Name).Append(label)));
        return new SchemaShape(output.Where(c => c.Name != label.Name).Concat(inputSchema.Where(c => c.Name == label.Name)));
    }

    // SchemaShape.Create(DataViewSchema) is internal to ML.NET (its estimators use it); without it the shape stops at the similarities.
    private static readonly System.Reflection.MethodInfo? ShapeOfSchema = typeof(SchemaShape).GetMethod("Create",
        System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static, [typeof(DataViewSchema)]);

    private sealed class ClassName
    {
        public string Name { get; set; } = "";
    }

    private sealed class ClassRow
    {
        public float[] Similarity { get; set; } = [];
        public string ClassLabel { get; set; } = "";
    }
}
