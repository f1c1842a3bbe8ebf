using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Onnx;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// The reconstruction energy of an MAE run as a stage (<see cref="ReconstructionEnergy"/>): fitting reads the images of
/// the input column as the reference — the images to call normal — and calibrates the energy on them; the fitted stage
/// is a chain of ML.NET's own transforms, [LoadImages] → ResizeImages → [ConvertToGrayscale] → ExtractPixels →
/// ApplyOnnxModel with the exported energy graph (<see cref="EnergyOnnxExporter"/>), that adds
/// <see cref="Options.OutputColumnName"/>, a vector of one float32: about 0 ± 1.4 on images like the reference, higher
/// for noisy, occluded or unfamiliar ones. Saved into one model.zip that a plain ML.NET app loads.
/// </summary>
public sealed class ReconstructionEnergyEstimator : IEstimator<ReconstructionEnergyTransformer>
{
    /// <summary>Settings of the energy stage; every property but the model has a documented default.</summary>
    public sealed class Options
    {
        /// <summary>The MAE run (its folder or checkpoint, <c>pretrain --method mae</c>); required.</summary>
        public string? Model { get; set; }

        /// <summary>The image column: MLImage, or text holding image paths. Default "Image".</summary>
        public string InputColumnName { get; set; } = "Image";

        /// <summary>The energy column, a vector of one float32. Default "Energy".</summary>
        public string OutputColumnName { get; set; } = "Energy";

        /// <summary>Seed of the masks every image is reconstructed under. Default 0.</summary>
        public int Seed { get; set; }

        /// <summary>Where to keep the exported energy graph ([N, 1] output); null uses a temporary file that the transformer deletes when disposed. Default null.</summary>
        public string? OnnxPath { get; set; }

        /// <summary>A copy.</summary>
        public Options Clone() => (Options)MemberwiseClone();
    }

    private readonly MLContext mlContext;
    private readonly Options options;
    private readonly ReconstructionEnergy energy;

    /// <summary>An estimator with its own copy of <paramref name="options"/>; the MAE run is loaded here (a missing or non-MAE run is named).</summary>
    public ReconstructionEnergyEstimator(MLContext mlContext, Options options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        this.options = options?.Clone() ?? throw new ArgumentNullException(nameof(options));
        energy = ReconstructionEnergy.Load(this.options.Model ?? throw new ArgumentException("The energy stage needs an MAE run (Options.Model).", nameof(options)), this.options.Seed);
    }

    private ImageLoadOptions LoadOptions => energy.ImageLoadOptions;

    /// <summary>Calibrates on the images of the input column and returns the energy stage.</summary>
    public ReconstructionEnergyTransformer Fit(IDataView input)
    {
        var column = input.Schema.GetColumnOrNull(options.InputColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Could not find input column '{options.InputColumnName}'");
        var load = LoadOptions;
        var calibration = energy.Calibrate(ImageStore.FromDataView(mlContext, input, options.InputColumnName, null, load));
        var (preprocessing, pixels, helpers) = ImageEmbeddingEstimator.ImageChain(mlContext,
            input.Schema.Select(c => c.Name).Append(options.OutputColumnName).ToHashSet(), column.Type is TextDataViewType, options.InputColumnName, load.Height, load.Width, load.Channels);
        return OnnxChainStage.Build(mlContext, input, preprocessing, pixels, helpers, options.OutputColumnName, 1, options.OnnxPath,
            (path, flat) =>
            {
                var export = EnergyOnnxExporter.DefaultOptions(energy);
                (export.InputName, export.OutputName, export.FlatOutput) = (pixels, options.OutputColumnName, flat);
                EnergyOnnxExporter.Export(energy, calibration, path, export);
            },
            (chain, onnxPath, ownsFile, scoringPath) => new ReconstructionEnergyTransformer(chain, calibration, onnxPath, ownsFile, scoringPath));
    }

    /// <summary>The output schema before fitting: the input's columns and the energy column, a float vector.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var load = LoadOptions;
        return ImageEmbeddingEstimator.OutputSchema(mlContext, inputSchema, options.InputColumnName, options.OutputColumnName, load.Height, load.Width, load.Channels);
    }
}

/// <summary>The fitted energy stage: ML.NET's own image transforms and ApplyOnnxModel with the calibrated energy graph.</summary>
public sealed class ReconstructionEnergyTransformer : OnnxChainStage
{
    internal ReconstructionEnergyTransformer(TransformerChain<ITransformer> chain, EnergyCalibration calibration, string onnxPath, bool ownsOnnxFile, string scoringOnnxPath)
        : base(chain, onnxPath, ownsOnnxFile, scoringOnnxPath) =>
        Calibration = calibration;

    /// <summary>What the reference images taught: the usual errors per patch position and of the two image terms.</summary>
    public EnergyCalibration Calibration { get; }
}
