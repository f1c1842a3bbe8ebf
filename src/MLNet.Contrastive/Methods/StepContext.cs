using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>What a method's step hooks know about the step being run.</summary>
public sealed class StepContext
{
    private readonly Action<string>? mark;

    /// <summary>Creates the context of one step.</summary>
    public StepContext(Generator generator, double progress, int epoch, int step, Tensor? labels = null, Action<string>? mark = null, Tensor? pairs = null, int[]? indices = null,
        Training.IDataParallel? ranks = null)
    {
        Ranks = ranks;
        Generator = generator;
        Progress = progress;
        Epoch = epoch;
        Step = step;
        Labels = labels;
        Pairs = pairs;
        Indices = indices;
        this.mark = mark;
    }

    /// <summary>The run's seeded generator: every random draw of a step (views, noise, shuffles) comes from it, so a resumed run repeats them.</summary>
    public Generator Generator { get; }

    /// <summary>Fraction of training done before this step, in [0, 1] (of the time budget or of the epochs); drives methods' own schedules.</summary>
    public double Progress { get; }

    /// <summary>The epoch being run, from 1.</summary>
    public int Epoch { get; }

    /// <summary>The global step being run, from 1.</summary>
    public int Step { get; }

    /// <summary>
    /// The batch's labels, given to methods that require labels: class indices [B] (int64), or class probabilities [B, K]
    /// (float32) when the store holds soft labels (<see cref="Data.ImageStore.LabelProbabilities"/>); null otherwise.
    /// </summary>
    public Tensor? Labels { get; }

    /// <summary>The batch's captions' features [B, T] or second images [B, C, H, W], given to methods that require pairs; null otherwise.</summary>
    public Tensor? Pairs { get; }

    /// <summary>The batch's rows in the training data (row i of the batch is image Indices[i]); null where a step is not drawn from it.</summary>
    public int[]? Indices { get; }

    /// <summary>
    /// In data-parallel training over more than one rank, the ranks (this step's images are this rank's slice of the global
    /// batch): what a method's state learns from the batch — a queue's new rows, DINO's centre — must come from the global
    /// batch, so that every rank keeps the same state as one process would. Null in one process.
    /// </summary>
    public Training.IDataParallel? Ranks { get; }

    /// <summary>Tells a profiler that the named phase of the step has just ended (views, encoder, loss); free when nobody listens.</summary>
    public void Mark(string phase) => mark?.Invoke(phase);
}

/// <summary>
/// Parameters the optimizer trains with one setting: the learning rate is the schedule's times
/// <see cref="LearningRateFactor"/>, or the peak times the factor when <see cref="FixedLearningRate"/> (SimSiam's predictor).
/// LARS adapts and decays every parameter of more than one dimension; biases and normalisation parameters are excluded.
/// </summary>
/// <param name="Parameters">The group's parameters.</param>
/// <param name="LearningRateFactor">Multiplies the group's learning rate. Default 1.</param>
/// <param name="FixedLearningRate">Keep the peak learning rate instead of following the schedule. Default false.</param>
public sealed record ParameterGroup(IReadOnlyList<Parameter> Parameters, double LearningRateFactor = 1, bool FixedLearningRate = false);
