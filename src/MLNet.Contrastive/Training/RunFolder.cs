namespace MLNet.Contrastive.Training;

/// <summary>
/// The folder a run writes (<c>pretrain</c>, <c>finetune</c> and <c>demo --out</c>): the one place that names its files.
/// Readers and writers take their paths from here, so a new file of the run folder is one constant and one property.
/// </summary>
public sealed class RunFolder
{
    /// <summary>The method's weights, optimizer and generator state, written after every epoch (<see cref="PretrainOptions.CheckpointPath"/>).</summary>
    public const string CheckpointFile = "checkpoint.bin";

    /// <summary>The training history, one record per epoch and per step, as JSON and as CSV.</summary>
    public const string HistoryFile = "history.json", HistoryCsvFile = "history.csv";

    /// <summary>What the HTML report shows (<see cref="Reporting.RunReport"/>), and the page rendered from it.</summary>
    public const string ReportFile = "report.json", ReportHtmlFile = "report.html";

    /// <summary>The ML.NET stage (images → embedding, or → class for a fine-tuned run) and the encoder it embeds.</summary>
    public const string ModelFile = "model.zip", EncoderFile = "encoder.onnx";

    /// <summary>A fine-tuned run's whole network: images → class logits (what its model.zip applies).</summary>
    public const string NetworkFile = "network.onnx";

    /// <summary>A clip run's towers: images → joint space, and caption features or second images → joint space.</summary>
    public const string ImageTowerFile = "image_tower.onnx", TextTowerFile = "text_tower.onnx", PairedImageTowerFile = "paired_image_tower.onnx";

    /// <summary>What <c>probe</c> and <c>zero-shot</c> write next to the model by default.</summary>
    public const string ProbeFile = "probe.zip", ZeroShotFile = "zeroshot.zip";

    /// <summary>The input column of the model.zip stages the CLI writes: one image path per row.</summary>
    public const string ImagePathColumn = "ImagePath";

    /// <summary>A run folder at <paramref name="path"/> (it need not exist yet).</summary>
    public RunFolder(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = path;
    }

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>The path of <paramref name="file"/> in the folder.</summary>
    public string this[string file] => System.IO.Path.Combine(Path, file);

    /// <summary><see cref="CheckpointFile"/> in the folder.</summary>
    public string Checkpoint => this[CheckpointFile];

    /// <summary><see cref="HistoryFile"/> in the folder.</summary>
    public string History => this[HistoryFile];

    /// <summary><see cref="HistoryCsvFile"/> in the folder.</summary>
    public string HistoryCsv => this[HistoryCsvFile];

    /// <summary><see cref="ReportFile"/> in the folder.</summary>
    public string Report => this[ReportFile];

    /// <summary><see cref="ReportHtmlFile"/> in the folder.</summary>
    public string ReportHtml => this[ReportHtmlFile];

    /// <summary><see cref="ModelFile"/> in the folder.</summary>
    public string Model => this[ModelFile];

    /// <summary><see cref="EncoderFile"/> in the folder.</summary>
    public string Encoder => this[EncoderFile];

    /// <summary><see cref="NetworkFile"/> in the folder.</summary>
    public string Network => this[NetworkFile];

    /// <summary>
    /// The model.zip and encoder.onnx of a finished run, from its folder or from its model.zip (which may have been
    /// renamed); both must exist.
    /// </summary>
    public static (string ModelZip, string EncoderOnnx) FindModel(string model)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        var isFolder = Directory.Exists(model);
        var folder = new RunFolder(isFolder ? model : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(model))!);
        var zip = isFolder ? folder.Model : model;
        if (!File.Exists(zip)) throw new FileNotFoundException($"{zip}: model not found (pass the folder pretrain wrote, or its {ModelFile}).", zip);
        if (!File.Exists(folder.Encoder)) throw new FileNotFoundException($"{folder.Encoder}: the encoder that goes with {zip} is missing.", folder.Encoder);
        return (zip, folder.Encoder);
    }

    /// <summary>
    /// The checkpoint of <paramref name="path"/>: the path itself, or <see cref="CheckpointFile"/> in it when it is a run
    /// folder; a folder without one, or a missing file, is named.
    /// </summary>
    public static string FindCheckpoint(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!Directory.Exists(path))
            return File.Exists(path) ? path : throw new FileNotFoundException($"{path}: no such checkpoint or run folder.", path);
        var file = new RunFolder(path).Checkpoint;
        return File.Exists(file) ? file
            : throw new FileNotFoundException($"{path}: the folder holds no {CheckpointFile}; give a pretraining run's folder or its checkpoint.", file);
    }
}
