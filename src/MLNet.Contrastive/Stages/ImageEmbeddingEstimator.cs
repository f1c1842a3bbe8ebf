using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Training;
using TorchSharp.Modules;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// Pretrains an encoder with a self-supervised method on the images of one column, and returns the embedding stage:
/// a chain of ML.NET's own transforms — [LoadImages] → ResizeImages → [ConvertToGrayscale] → ExtractPixels →
/// ApplyOnnxModel with the exported encoder — that <c>mlContext.Model.Save</c> writes into one self-contained model.zip.
/// Input: an MLImage column or an image-path (text) column. Output: the input's columns and the embedding, a vector
/// of E float32 values (<see cref="Models.EncoderOptions.EmbeddingDimension"/>).
/// </summary>
public sealed class ImageEmbeddingEstimator : IEstimator<ImageEmbeddingTransformer>
{
    /// <summary>Settings of the embedding stage; every property has a documented default.</summary>
    public sealed class Options
    {
        /// <summary>The embedding column, [E] float32. Default "Embedding".</summary>
        public string OutputColumnName { get; set; } = "Embedding";

        /// <summary>The image column: MLImage, or text holding image paths. Default "Image".</summary>
        public string InputColumnName { get; set; } = "Image";

        /// <summary>Height images are resized to (ResizeImages, Fill). Default 28.</summary>
        public int ImageHeight { get; set; } = 28;

        /// <summary>Width images are resized to. Default 28.</summary>
        public int ImageWidth { get; set; } = 28;

        /// <summary>1 (grayscale) or 3 (RGB). Default 1.</summary>
        public int Channels { get; set; } = 1;

        /// <summary>L2-normalise the embeddings inside the ONNX graph. Default false.</summary>
        public bool L2Normalize { get; set; }

        /// <summary>
        /// The column paired with each image for CLIP-style training (<see cref="Methods.ClipOptions"/>): captions (text),
        /// or second images (MLImage, or image paths when the method's <see cref="Methods.ClipOptions.Pairing"/> is Image),
        /// read at this stage's size and channels. Default null (no pairs).
        /// </summary>
        public string? PairedColumnName { get; set; }

        /// <summary>Where to keep the exported encoder; null uses a temporary file that the transformer deletes when disposed. Default null.</summary>
        public string? OnnxPath { get; set; }

        /// <summary>The pretraining run (method, budget, batch size, optimizer, seed, …). Default: SimCLR, 10 epochs.</summary>
        public PretrainOptions Pretrain { get; set; } = new();

        /// <summary>A copy with its own <see cref="Pretrain"/> settings.</summary>
        public Options Clone()
        {
            var copy = (Options)MemberwiseClone();
            copy.Pretrain = Pretrain.Clone();
            return copy;
        }
    }

    /// <summary>
    /// Name of the pixel column fed to the encoder, which is also the ONNX graph's input name (Pixels_1, … when the
    /// input already has a column of that name). The stage drops it, and the other columns it adds on the way, after the encoder.
    /// </summary>
    public const string PixelsColumnName = "Pixels";

    private readonly MLContext mlContext;
    private readonly Options options;

    /// <summary>An estimator with its own copy of <paramref name="options"/>.</summary>
    public ImageEmbeddingEstimator(MLContext mlContext, Options options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        this.options = options?.Clone() ?? throw new ArgumentNullException(nameof(options));
        LoadOptions.Validate();
    }

    /// <summary>This estimator's own copy of its settings.</summary>
    internal Options Settings => options;

    private ImageLoadOptions LoadOptions => new() { Height = options.ImageHeight, Width = options.ImageWidth, Channels = options.Channels };

    /// <summary>Pretrains on the images of the input column, exports the encoder and returns the embedding stage.</summary>
    public ImageEmbeddingTransformer Fit(IDataView input)
    {
        if (input.Schema.GetColumnOrNull(options.InputColumnName) is null)
            throw new ArgumentOutOfRangeException(nameof(input), $"Could not find input column '{options.InputColumnName}'");
        var store = ImageStore.FromDataView(mlContext, input, options.InputColumnName, null, LoadOptions);
        if (options.PairedColumnName is { } paired) store = store.WithPairs(ReadPairs(input, paired));
        var result = new Pretrainer(options.Pretrain, mlContext).Fit(store);

        return CreateStage(mlContext, input, result, options);
    }

    /// <summary>The captions or second images of <paramref name="columnName"/>, one per row.</summary>
    private PairedInput ReadPairs(IDataView input, string columnName)
    {
        var column = input.Schema.GetColumnOrNull(columnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Could not find paired column '{columnName}'");
        var clip = options.Pretrain.Method as Methods.ClipOptions;
        if (column.Type is TextDataViewType && clip?.Pairing != Methods.Pairing.Image)
            return TextPairs.Create(input.GetColumn<string>(columnName).ToList(), clip?.TextBits ?? TextFeaturization.DefaultBits, mlContext);
        return new ImagePairs(ImageStore.FromDataView(mlContext, input, columnName, null, LoadOptions));
    }

    /// <summary>
    /// The embedding stage for an already pretrained encoder: exports it to ONNX and fits the ML.NET chain on
    /// <paramref name="input"/>'s schema (no rows are read), whose <see cref="Options.InputColumnName"/> holds images or paths.
    /// </summary>
    public static ImageEmbeddingTransformer CreateStage(MLContext mlContext, IDataView input, PretrainResult pretraining, Options options) =>
        CreateStage(mlContext, input, pretraining, options, head: null);

    /// <summary>
    /// <see cref="CreateStage(MLContext, IDataView, PretrainResult, Options)"/> with <paramref name="head"/>, when given,
    /// on the embedding: the output column holds its output, [K] (e.g. a fine-tuned classifier's logits).
    /// </summary>
    internal static ImageEmbeddingTransformer CreateStage(MLContext mlContext, IDataView input, PretrainResult pretraining, Options options, Linear? head)
    {
        var estimator = new ImageEmbeddingEstimator(mlContext, options);
        var (preprocessing, pixels, helpers) = estimator.Preprocessing(input.Schema);
        return OnnxChainStage.Build(mlContext, input, preprocessing, pixels, helpers, options.OutputColumnName,
            (int)(head?.out_features ?? pretraining.Encoder.EmbeddingDimension), options.OnnxPath,
            (path, flat) => EncoderOnnxExporter.Export(pretraining.Encoder, path, new EncoderOnnxOptions
            {
                InputName = pixels, OutputName = options.OutputColumnName, FlatOutput = flat,
                Height = options.ImageHeight, Width = options.ImageWidth, L2Normalize = options.L2Normalize,
                Tail = head is null ? null : (builder, value, _) => (EncoderOnnxExporter.Gemm(builder, head, value), head.out_features),
            }),
            (chain, onnxPath, ownsFile, scoringPath) => new ImageEmbeddingTransformer(chain, pretraining, onnxPath, ownsFile, scoringPath));
    }

    /// <summary>
    /// The output schema before fitting: the input's columns and the embedding column, a float vector; ML.NET's own
    /// image transforms check the input column (with their schema-mismatch wording).
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        OutputSchema(mlContext, inputSchema, options.InputColumnName, options.OutputColumnName, options.ImageHeight, options.ImageWidth, options.Channels);

    /// <summary>
    /// The output schema of an image stage before fitting: <paramref name="inputSchema"/>'s columns and
    /// <paramref name="outputColumn"/>, a float vector; ML.NET's own image transforms check the input column.
    /// </summary>
    internal static SchemaShape OutputSchema(MLContext mlContext, SchemaShape inputSchema, string inputColumn, string outputColumn, int height, int width, int channels)
    {
        var column = inputSchema.FirstOrDefault(c => c.Name == inputColumn);
        if (column.Name is null)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find input column '{inputColumn}'");
        var (preprocessing, pixels, helpers) = ImageChain(mlContext, inputSchema.Select(c => c.Name).Append(outputColumn).ToHashSet(),
            column.ItemType is TextDataViewType, inputColumn, height, width, channels);
        // SchemaShape.Column has no public constructor; the output column is a float vector like the pixel
        // column, so the pixels, concatenated under the output's name, stand in for it.
        return preprocessing
            .Append(mlContext.Transforms.Concatenate(outputColumn, pixels))
            .Append(mlContext.Transforms.DropColumns([.. helpers]))
            .GetOutputSchema(inputSchema);
    }

    private (IEstimator<ITransformer> Chain, string Pixels, IReadOnlyList<string> Helpers) Preprocessing(DataViewSchema schema)
    {
        var input = schema.GetColumnOrNull(options.InputColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find input column '{options.InputColumnName}'");
        return Preprocessing(schema.Select(c => c.Name), input.Type is TextDataViewType);
    }

    /// <summary>
    /// [LoadImages →] the image chain up to the pixel column (the ONNX graph's input), with every column it adds —
    /// the pixels included — named so that no input column is hidden, and listed for dropping after the encoder.
    /// </summary>
    private (IEstimator<ITransformer> Chain, string Pixels, IReadOnlyList<string> Helpers) Preprocessing(IEnumerable<string> inputColumns, bool fromPaths) =>
        ImageChain(mlContext, inputColumns.Append(options.OutputColumnName).ToHashSet(), fromPaths, options.InputColumnName,
            options.ImageHeight, options.ImageWidth, options.Channels);

    /// <summary>
    /// [LoadImages →] ResizeImages → [ConvertToGrayscale] → ExtractPixels (floats 0–255) from <paramref name="inputColumn"/>
    /// (MLImage, or paths when <paramref name="fromPaths"/>) to a pixel column named outside <paramref name="taken"/>;
    /// every column it adds, the pixels included, is listed for dropping after the ONNX model.
    /// </summary>
    internal static (IEstimator<ITransformer> Chain, string Pixels, IReadOnlyList<string> Helpers) ImageChain(MLContext mlContext, ISet<string> taken,
        bool fromPaths, string inputColumn, int height, int width, int channels)
    {
        var images = fromPaths ? ColumnNames.Unused("LoadedImage", taken) : inputColumn;
        var pixels = ColumnNames.Unused(PixelsColumnName, taken);
        var (chain, helpers) = ImagePreprocessing.Chain(mlContext, images, pixels, height, width, channels, asFloat: true, taken);
        return fromPaths
            ? (mlContext.Transforms.LoadImages(images, imageFolder: null, inputColumn).Append(chain), pixels, [images, .. helpers, pixels])
            : (chain, pixels, [.. helpers, pixels]);
    }
}
