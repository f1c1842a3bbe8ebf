using System.Text.Json.Serialization;
using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Methods;

namespace MLNet.Contrastive.Training;

/// <summary>The optimizer used for pretraining.</summary>
public enum OptimizerKind
{
    /// <summary>AdamW (decoupled weight decay).</summary>
    AdamW,
    /// <summary>SGD with momentum.</summary>
    Sgd,
    /// <summary>
    /// LARS (You et al. 2017): SGD with momentum whose step for each weight tensor is scaled by the trust ratio
    /// η‖w‖ / (‖g‖ + wd‖w‖); biases and normalisation parameters are neither adapted nor decayed.
    /// </summary>
    Lars,
}

/// <summary>How the default peak learning rate of SGD and LARS grows with the batch size.</summary>
public enum LearningRateScaling
{
    /// <summary>0.3 × BatchSize / 256 (Goyal et al. 2017).</summary>
    Linear,
    /// <summary>0.075 × √BatchSize, SimCLR's rule for LARS at large batches (Chen et al. 2020, appendix B.1).</summary>
    Sqrt,
}

/// <summary>Settings of a pretraining run: the method and its own settings, budget, batch, optimizer, schedule and machine. Every property has a documented default.</summary>
public sealed class PretrainOptions
{
    /// <summary>The method and its settings, e.g. <c>new ByolOptions()</c> (see <see cref="PretrainingMethods"/>). Default <see cref="SimClrOptions"/> with its defaults.</summary>
    public MethodOptions Method { get; set; } = new SimClrOptions();

    /// <summary>
    /// The run's budget, batch, learning rate, weight decay, seed, threads and device (<see cref="RunOptions"/>, declared once
    /// for every kind of run). Default <see cref="RunOptions.Pretraining"/>: 10 epochs of 256 images, the method's learning rate.
    /// </summary>
    public RunOptions Run { get; set; } = RunOptions.Pretraining();

    /// <summary>Default <see cref="OptimizerKind.AdamW"/>.</summary>
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.AdamW;

    /// <summary>The default learning rate's growth with the batch size, for SGD and LARS. Default <see cref="Training.LearningRateScaling.Linear"/>.</summary>
    public LearningRateScaling LearningRateScaling { get; set; } = LearningRateScaling.Linear;

    /// <summary>
    /// Gradient caching: images per forward pass when smaller than the batch (<see cref="RunOptions.BatchSize"/>), one view of them at a time.
    /// The step's gradient is the whole batch's (see <see cref="Methods.IEmbeddingObjective"/>), and memory holds the
    /// activations of one view of one chunk plus the batch's views and embeddings — e.g. BatchSize 4096 with ChunkSize 256. Methods whose loss couples the batch only
    /// through embeddings (SimCLR, NCE, triplet, Barlow Twins, VICReg) support it. Default null (one pass).
    /// </summary>
    public int? ChunkSize { get; set; }

    /// <summary>Momentum of SGD and LARS (not a method's moving average). Default 0.9.</summary>
    public double SgdMomentum { get; set; } = 0.9;

    /// <summary>LARS's trust coefficient η. Default 0.02 (solo-learn's; the LARS paper's 0.001 goes with far larger learning rates).</summary>
    public double LarsTrustCoefficient { get; set; } = 0.02;

    /// <summary>
    /// Fraction of training spent in linear warm-up before the cosine decay. Null: 0.05, or 0.01 for a run from an
    /// <see cref="Initialization"/>, whose features need no long warm-up. Default null.
    /// </summary>
    public double? WarmupFraction { get; set; }

    /// <summary>
    /// The weight decay at the end of training, reached from the run's (<see cref="RunOptions.WeightDecay"/>) along a half
    /// cosine over training: DINO's and iBOT's recipe raises it from 0.04 to 0.4 (ViTs, AdamW), which keeps the late,
    /// small steps from letting the weights grow. Null: constant. Default null.
    /// </summary>
    public double? WeightDecayEnd { get; set; }

    /// <summary>
    /// The default learning rate's factor when a run continues from pretrained weights (hierarchical pretraining, Reed et
    /// al. 2022): a full from-scratch learning rate overwrites the imported features in the first steps.
    /// </summary>
    public const double ContinuedLearningRateFactor = 0.1;

    /// <summary>Encoder shape; null uses <see cref="EncoderOptions.For"/> the data's channels and size. Default null.</summary>
    public EncoderOptions? Encoder { get; set; }

    /// <summary>
    /// Start from these weights instead of a random initialisation (<see cref="PretrainedEncoder.Load"/> a run folder or
    /// checkpoint); its shape is the run's encoder shape, so <see cref="Encoder"/> stays null. A resumed run takes its
    /// checkpoint's weights instead. Default null.
    /// </summary>
    [JsonIgnore]
    public PretrainedEncoder? Initialization { get; set; }

    /// <summary>
    /// Re-estimate the encoder's batch-norm statistics on the training images (unaugmented; <see cref="BatchNormStatistics"/>)
    /// before the first step of a run from an <see cref="Initialization"/>: weights from another domain keep that
    /// domain's statistics. Null: on when the run trains (continued pretraining), off with 0 epochs, whose run then holds
    /// the imported weights and statistics unchanged. Default null.
    /// </summary>
    public bool? ReestimateBatchNorm { get; set; }

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

    /// <summary>
    /// Called after every full epoch, in order after the monitors (<see cref="MonitorEvery"/>), outside the time budget
    /// (e.g. <see cref="EarlyStopping"/>); the run stops after an epoch where any returns true. Default none.
    /// </summary>
    [JsonIgnore]
    public IList<IEpochCallback> EpochCallbacks { get; set; } = [];

    /// <summary>Where the checkpoint is written (atomically; <see cref="RunFolder.Checkpoint"/> in a run folder) after every epoch and at the end; null writes none. Default null.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Continue from <see cref="CheckpointPath"/> when it exists. Default false.</summary>
    public bool Resume { get; set; }

    /// <summary>
    /// Data-parallel training over several processes (MLNet.Contrastive.Distributed's MPI ranks): <see cref="RunOptions.BatchSize"/>
    /// is the global batch, each rank trains on its slice and only rank 0 writes the checkpoint. Default null (this process alone).
    /// </summary>
    [JsonIgnore]
    public IDataParallel? DataParallel { get; set; }

    /// <summary>
    /// With <see cref="DataParallel"/>: batch norms normalise by the statistics of every rank's slice of the global batch
    /// together (<see cref="Models.SyncBatchNorm"/>), so that N ranks at batch B/N train as one process at batch B. It
    /// costs two exchanges per batch-norm layer per step, at each of which the ranks wait for the slowest (docs/scale.md
    /// gives what that cost on a small machine); off, each rank normalises its own slice (PyTorch DDP's default). Default true.
    /// </summary>
    public bool SynchronizeBatchNorm { get; set; } = true;

    internal double PeakLearningRate => Run.LearningRate ?? (Initialization is null ? 1 : ContinuedLearningRateFactor) * (Optimizer == OptimizerKind.AdamW ? 2e-3
        : LearningRateScaling == LearningRateScaling.Sqrt ? 0.075 * Math.Sqrt(Run.BatchSize) : 0.3 * Run.BatchSize / 256.0);

    /// <summary>The epochs this run trains (<see cref="RunOptions.Epochs"/>, checked by <see cref="Validate"/>).</summary>
    internal int Epochs => Run.Epochs ?? 0;

    internal double Warmup => WarmupFraction ?? (Initialization is null ? 0.05 : 0.01);

    /// <summary>A copy with its own <see cref="Method"/>, <see cref="Encoder"/> and <see cref="Augmentation"/> settings, for runs that change a few settings of this one.</summary>
    public PretrainOptions Clone()
    {
        var copy = (PretrainOptions)MemberwiseClone();
        copy.Run = Run with { };
        copy.Method = Method.Clone();
        copy.Encoder = Encoder?.Clone();
        copy.Augmentation = Augmentation?.Clone();
        copy.EpochCallbacks = [.. EpochCallbacks];
        return copy;
    }

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Run, nameof(Run));
        if (Run.BatchSize < 2) throw new ArgumentOutOfRangeException(nameof(Run.BatchSize), Run.BatchSize, "The batch size must be at least 2 (contrastive losses need negatives).");
        if (Run.Minutes is null && (Run.Epochs is null or < 0 || Run.Epochs == 0 && Initialization is null))
            throw new ArgumentOutOfRangeException(nameof(Run.Epochs), Run.Epochs, "Epochs must be positive (0 only with an Initialization, whose weights the run then keeps unchanged).");
        Run.Validate();
        if (!(PeakLearningRate > 0) || !double.IsFinite(PeakLearningRate)) throw new ArgumentOutOfRangeException(nameof(Run.LearningRate), Run.LearningRate, "The learning rate must be positive.");
        if (ChunkSize is <= 0) throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, "The chunk size must be positive (or null for one pass).");
        if (WeightDecayEnd is { } end && (end < 0 || !double.IsFinite(end))) throw new ArgumentOutOfRangeException(nameof(WeightDecayEnd), WeightDecayEnd, "The final weight decay must be a non-negative number (or null for a constant one).");
        if (WarmupFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(WarmupFraction), WarmupFraction, "The warm-up fraction must be in [0, 1).");
        if (SgdMomentum is < 0 or >= 1 || double.IsNaN(SgdMomentum)) throw new ArgumentOutOfRangeException(nameof(SgdMomentum), SgdMomentum, "The momentum must be in [0, 1).");
        if (!(LarsTrustCoefficient > 0) || !double.IsFinite(LarsTrustCoefficient)) throw new ArgumentOutOfRangeException(nameof(LarsTrustCoefficient), LarsTrustCoefficient, "LARS's trust coefficient must be positive.");
        ArgumentNullException.ThrowIfNull(Method, nameof(Method));
        if (EpochCallbacks is null || EpochCallbacks.Any(c => c is null)) throw new ArgumentNullException(nameof(EpochCallbacks), "EpochCallbacks must be a list without nulls.");
        Method.Validate();
        if (MonitorEvery < 0) throw new ArgumentOutOfRangeException(nameof(MonitorEvery), MonitorEvery, "MonitorEvery must be 0 (off) or positive.");
        if (ReestimateBatchNorm == true && Initialization is null)
            throw new ArgumentException("Re-estimating batch-norm statistics applies to a run from an Initialization (pretrained weights); this run starts from random weights.", nameof(ReestimateBatchNorm));
        if (Initialization is not null && Encoder is not null)
            throw new ArgumentException($"Give either an encoder shape or an initialization ({Initialization.Source}), not both: the initialization fixes the shape.", nameof(Encoder));
        if (DataParallel is { WorldSize: var ranks, Rank: var rank })
        {
            if (ranks < 1 || rank < 0 || rank >= ranks) throw new ArgumentException($"Rank {rank} of {ranks} is not a rank of the group.", nameof(DataParallel));
            if (Run.BatchSize % ranks != 0)
                throw new ArgumentException($"The global batch size {Run.BatchSize} does not split evenly over {ranks} ranks; use a multiple of {ranks}.", nameof(Run.BatchSize));
            // Each rank would map the cache's files and create them on its first miss, truncating what another has mapped.
            if (ranks > 1 && Method is DistillationOptions { TeacherCache: { } cache })
                throw new ArgumentException($"The teacher cache ({cache}) is written by one process; it cannot be shared by {ranks} ranks: distil over the ranks without it, or in one process with it.", nameof(DataParallel));
        }
        if (Resume && CheckpointPath is null) throw new ArgumentException("Resume needs a CheckpointPath.", nameof(Resume));
    }
}
