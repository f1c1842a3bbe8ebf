using System.Text.Json.Serialization;
using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;

namespace MLNet.Contrastive.Training;

/// <summary>The optimizer used for pretraining.</summary>
public enum OptimizerKind
{
    /// <summary>AdamW (decoupled weight decay).</summary>
    AdamW,
    /// <summary>SGD with Nesterov-free momentum.</summary>
    Sgd,
}

/// <summary>Settings of a pretraining run. Every property has a documented default.</summary>
public sealed class PretrainOptions
{
    /// <summary>The method, by registry name (<see cref="Methods.PretrainingMethods"/>). Default "simclr".</summary>
    public string Method { get; set; } = "simclr";

    /// <summary>Epochs to train; ignored when <see cref="Minutes"/> is set. Default 10.</summary>
    public int Epochs { get; set; } = 10;

    /// <summary>Wall-clock budget in minutes; when set, training stops when it is spent and the schedule follows time. Default null.</summary>
    public double? Minutes { get; set; }

    /// <summary>Images per step (each gives <c>ViewsPerImage</c> views). Default 256.</summary>
    public int BatchSize { get; set; } = 256;

    /// <summary>Default <see cref="OptimizerKind.AdamW"/>.</summary>
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.AdamW;

    /// <summary>Peak learning rate; null picks 2e-3 for AdamW and 0.3 × BatchSize / 256 for SGD. Default null.</summary>
    public double? LearningRate { get; set; }

    /// <summary>Weight decay. Default 1e-4 (AdamW, decoupled) — 5e-4 is usual for SGD.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>SGD momentum. Default 0.9.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>Fraction of training spent in linear warm-up before the cosine decay. Default 0.05.</summary>
    public double WarmupFraction { get; set; } = 0.05;

    /// <summary>Temperature τ of NT-Xent and NCE. Default 0.2.</summary>
    public double Temperature { get; set; } = NtXentLoss.DefaultTemperature;

    /// <summary>Triplet: the margin between positive and negative distances. Default 0.5 (distances lie in [0, 2]).</summary>
    public double Margin { get; set; } = TripletMarginLoss.DefaultMargin;

    /// <summary>Triplet: how each anchor's negative is chosen. Default <see cref="TripletMining.SemiHard"/>.</summary>
    public TripletMining Mining { get; set; } = TripletMining.SemiHard;

    /// <summary>Triplet: the distance between L2-normalised embeddings. Default <see cref="TripletDistance.Cosine"/>.</summary>
    public TripletDistance Distance { get; set; } = TripletDistance.Cosine;

    /// <summary>NCE: noise samples k per positive pair, drawn from the batch. Default 16.</summary>
    public int NoiseSamples { get; set; } = NceLoss.DefaultNoiseSamples;

    /// <summary>Jigsaw: size P of the permutation set. Default 100.</summary>
    public int JigsawPermutations { get; set; } = 100;

    /// <summary>Rotation: light views (crop 0.6–1 and flip) before rotating. Default true.</summary>
    public bool RotationAugmentation { get; set; } = true;

    /// <summary>Projection head output size. Default 128.</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <summary>Projection head hidden size. Default 512.</summary>
    public int ProjectionHiddenDimension { get; set; } = 512;

    /// <summary>Seed for initialisation, shuffling and augmentation. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>CPU threads for libtorch. Default: all processors.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>"cpu", "cuda" or "auto" (CUDA when available). Default "auto".</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Encoder shape; null uses <see cref="EncoderOptions.For"/> the data's channels and size. Default null.</summary>
    public EncoderOptions? Encoder { get; set; }

    /// <summary>View recipe; null uses <see cref="AugmentationOptions.ForImageSize"/>. Default null.</summary>
    public AugmentationOptions? Augmentation { get; set; }

    /// <summary>Run the monitors (kNN accuracy, collapse signals) every this many epochs; 0 turns them off. Default 0.</summary>
    public int MonitorEvery { get; set; }

    /// <summary>
    /// Images the monitors embed; when labelled, the first 80 % form the kNN bank and the rest are its queries.
    /// Null uses up to 2,000 training images (collapse signals only, unless they are labelled). Default null.
    /// </summary>
    [JsonIgnore]
    public ImageStore? MonitorData { get; set; }

    /// <summary>Called with each monitor result (also kept in the training history). Default null.</summary>
    [JsonIgnore]
    public Action<MonitorRecord>? OnMonitor { get; set; }

    /// <summary>Where the checkpoint is written (atomically) after every epoch and at the end; null writes none. Default null.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Continue from <see cref="CheckpointPath"/> when it exists. Default false.</summary>
    public bool Resume { get; set; }

    internal double PeakLearningRate => LearningRate ?? (Optimizer == OptimizerKind.AdamW ? 2e-3 : 0.3 * BatchSize / 256.0);

    /// <summary>A shallow copy, for runs that change a few settings of this one.</summary>
    public PretrainOptions Clone() => (PretrainOptions)MemberwiseClone();

    internal void Validate()
    {
        if (BatchSize < 2) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "The batch size must be at least 2 (contrastive losses need negatives).");
        if (Minutes is null && Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Epochs must be positive.");
        if (Minutes is <= 0) throw new ArgumentOutOfRangeException(nameof(Minutes), Minutes, "The time budget must be positive.");
        if (PeakLearningRate <= 0) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "The learning rate must be positive.");
        if (WarmupFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(WarmupFraction), WarmupFraction, "The warm-up fraction must be in [0, 1).");
        if (Threads <= 0) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "The thread count must be positive.");
        if (Device is not ("cpu" or "cuda" or "auto")) throw new ArgumentOutOfRangeException(nameof(Device), Device, "The device must be cpu, cuda or auto.");
        if (NoiseSamples <= 0) throw new ArgumentOutOfRangeException(nameof(NoiseSamples), NoiseSamples, "NCE needs at least one noise sample.");
        if (Margin < 0) throw new ArgumentOutOfRangeException(nameof(Margin), Margin, "The margin must be non-negative.");
        if (MonitorEvery < 0) throw new ArgumentOutOfRangeException(nameof(MonitorEvery), MonitorEvery, "MonitorEvery must be 0 (off) or positive.");
        if (Resume && CheckpointPath is null) throw new ArgumentException("Resume needs a CheckpointPath.", nameof(Resume));
    }
}
