using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// Data-parallel training across processes (<see cref="PretrainOptions.DataParallel"/>): the group of ranks that
/// trains one model. Every rank runs the same run with the same options; each takes its own contiguous slice of every
/// global batch (<see cref="RunOptions.BatchSize"/> / <see cref="WorldSize"/> images), the gradients are averaged
/// after backward and before <see cref="Methods.PretrainingMethod.AfterBackward"/> (so clipping and frozen parts see the
/// global gradient, as in one process), and rank 0 alone writes the checkpoint. The core holds no transport:
/// MLNet.Contrastive.Distributed implements it over MPI.
/// </summary>
public interface IDataParallel
{
    /// <summary>This process's rank, 0 … <see cref="WorldSize"/> − 1; rank 0 writes the run's files.</summary>
    int Rank { get; }

    /// <summary>The number of ranks (at least 1).</summary>
    int WorldSize { get; }

    /// <summary>Replaces every rank's <paramref name="tensors"/> (float32, same shapes on every rank) with rank 0's: the initial weights.</summary>
    void Broadcast(IReadOnlyList<Tensor> tensors);

    /// <summary>Replaces every rank's <paramref name="tensors"/> (float32, same shapes on every rank) with their mean over the ranks: gradients, the loss.</summary>
    void Average(IReadOnlyList<Tensor> tensors);

    /// <summary>
    /// Every rank's <paramref name="local"/> (float32, [n, …], the same shape on every rank) stacked by rank: [N·n, …],
    /// without gradient. The exact global batch of a loss that couples the batch (<see cref="Methods.IEmbeddingObjective"/>).
    /// </summary>
    Tensor AllGather(Tensor local);
}
