namespace MLNet.Contrastive.Training;

/// <summary>
/// The settings every training run has, whatever it trains: its budget (epochs or minutes), batch, learning rate and
/// weight decay, seed, threads and device. Declared once here and held by pretraining (<see cref="PretrainOptions.Run"/>)
/// and fine-tuning (<see cref="Stages.FineTuningTrainer.Options.Run"/>), each with its own defaults
/// (<see cref="Pretraining"/>, <see cref="FineTuning"/>); a run derived from another is <c>run with { Epochs = … }</c>.
/// </summary>
public sealed record class RunOptions
{
    /// <summary>
    /// Epochs to train; ignored when <see cref="Minutes"/> is set. Pretraining: at least 1, or 0 with an initialization, whose
    /// weights the run then keeps unchanged (a run folder of imported weights); default 10. Fine-tuning: null takes 20, or as
    /// many as <see cref="Stages.FineTuningTrainer.Options.DefaultMinimumSteps"/> steps take when the labelled images are few;
    /// default null.
    /// </summary>
    public int? Epochs { get; set; }

    /// <summary>Wall-clock budget in minutes; when set, training stops when it is spent and the schedule follows time. Default null.</summary>
    public double? Minutes { get; set; }

    /// <summary>
    /// Images per step (in pretraining each gives the method's views; with data-parallel training the global batch).
    /// Default 256 for pretraining, 128 for fine-tuning (at most the labelled images).
    /// </summary>
    public int BatchSize { get; set; }

    /// <summary>
    /// Peak learning rate (warm-up, then cosine decay). Pretraining: null picks 2e-3 for AdamW and, for SGD and LARS, the
    /// rule of <see cref="PretrainOptions.LearningRateScaling"/>, times <see cref="PretrainOptions.ContinuedLearningRateFactor"/>
    /// for a run from an initialization; default null. Fine-tuning: the classifier's (AdamW; the encoder's is a factor of it);
    /// default 1e-3.
    /// </summary>
    public double? LearningRate { get; set; }

    /// <summary>Weight decay. Default 1e-4 (AdamW, decoupled) — 5e-4 is usual for SGD, 1e-6 to 1e-5 for LARS.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>Seed for initialisation, shuffling and augmentation. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>CPU threads for libtorch. Default: all processors.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>"cpu", "cuda" or "auto" (CUDA when available). Default "auto".</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Pretraining's defaults: 10 epochs of 256 images, the method's learning rate.</summary>
    public static RunOptions Pretraining() => new() { Epochs = 10, BatchSize = 256 };

    /// <summary>Fine-tuning's defaults: epochs from the number of labelled images, 128 images per step, learning rate 1e-3.</summary>
    public static RunOptions FineTuning() => new() { BatchSize = 128, LearningRate = 1e-3 };

    /// <summary>Checks the settings every run shares, naming the one that is wrong.</summary>
    internal void Validate()
    {
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "The batch size must be positive.");
        if (Epochs is < 0) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Epochs must not be negative.");
        if (Minutes is { } m && (!(m > 0) || !double.IsFinite(m))) throw new ArgumentOutOfRangeException(nameof(Minutes), Minutes, "The time budget must be a positive, finite number of minutes.");
        if (LearningRate is { } lr && (!(lr > 0) || !double.IsFinite(lr))) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "The learning rate must be positive.");
        if (WeightDecay is < 0 || !double.IsFinite(WeightDecay)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "The weight decay must be a non-negative number.");
        Runtime.TorchRuntime.CheckThreads(Threads, nameof(Threads));
        if (Device is not ("cpu" or "cuda" or "auto")) throw new ArgumentOutOfRangeException(nameof(Device), Device, "The device must be cpu, cuda or auto.");
    }
}
