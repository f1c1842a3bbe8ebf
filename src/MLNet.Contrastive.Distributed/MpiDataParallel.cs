using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Distributed;

/// <summary>
/// <see cref="IDataParallel"/> over the MPI ranks of an <c>mpiexec</c> job: the tensors of a call are packed into one
/// flat float32 buffer on the CPU and go in one MPI call (in buckets of <see cref="MpiWorld.BucketFloats"/> when
/// larger), never one call per parameter — PyTorch DDP's flat-bucket idea (torch/csrc/distributed/c10d/reducer.cpp),
/// without its overlap of communication with backward. Set it as <see cref="PretrainOptions.DataParallel"/>.
/// </summary>
public sealed class MpiDataParallel : IDataParallel, IDisposable
{
    private readonly MpiWorld world;

    /// <summary>Data-parallel training over <paramref name="world"/>; it needs at least two ranks.</summary>
    public MpiDataParallel(MpiWorld world)
    {
        ArgumentNullException.ThrowIfNull(world);
        if (world.Size < 2)
            throw new InvalidOperationException(
                "Distributed training was asked for, but the MPI world has 1 rank: launch N ≥ 2 ranks with `mpiexec -n N …` " +
                "(or leave out --distributed to train in one process).");
        this.world = world;
    }

    /// <summary>Starts MPI (<see cref="MpiWorld.Start"/>) and trains over all its ranks.</summary>
    public static MpiDataParallel Start() => new(MpiWorld.Start());

    /// <inheritdoc/>
    public int Rank => world.Rank;

    /// <inheritdoc/>
    public int WorldSize => world.Size;

    /// <summary>The MPI world the ranks share.</summary>
    public MpiWorld World => world;

    /// <summary>Finalizes MPI (<see cref="MpiWorld.Dispose"/>): every rank calls it at the end of the job.</summary>
    public void Dispose() => world.Dispose();

    /// <inheritdoc/>
    public void Broadcast(IReadOnlyList<Tensor> tensors) => Exchange(tensors, average: false);

    /// <inheritdoc/>
    public void Average(IReadOnlyList<Tensor> tensors) => Exchange(tensors, average: true);

    /// <inheritdoc/>
    public unsafe Tensor AllGather(Tensor local)
    {
        ArgumentNullException.ThrowIfNull(local);
        if (local.dtype != ScalarType.Float32) throw new ArgumentException($"Only float32 tensors travel between ranks; this one is {local.dtype}.", nameof(local));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        CheckGatherSize(local.numel(), WorldSize);
        var send = local.detach().cpu().contiguous();
        var all = empty([WorldSize * send.shape[0], .. send.shape[1..]]);
        fixed (byte* input = send.bytes)
        fixed (byte* output = all.bytes)
            world.AllGather(new ReadOnlySpan<float>(input, (int)send.numel()), new Span<float>(output, (int)all.numel()));
        return all.to(local.device).MoveToOuterDisposeScope();
    }

    /// <summary>MPI counts are ints: every rank's <paramref name="count"/> floats gathered must stay within one call.</summary>
    internal static void CheckGatherSize(long count, int ranks)
    {
        if (count * ranks > int.MaxValue)
            throw new ArgumentException(
                $"Gathering {count:N0} floats from each of {ranks} ranks ({count * ranks:N0}) exceeds one MPI call's {int.MaxValue:N0}; use a smaller batch per step.", "local");
    }

    private unsafe void Exchange(IReadOnlyList<Tensor> tensors, bool average)
    {
        if (tensors.Count == 0) return;
        if (tensors.FirstOrDefault(t => t.dtype != ScalarType.Float32) is { } other)
            throw new ArgumentException($"Only float32 tensors travel between ranks; one is {other.dtype}.", nameof(tensors));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flat = cat(tensors.Select(t => t.reshape(-1)).ToArray()).cpu().contiguous();
        fixed (byte* data = flat.bytes)
        {
            if (average) world.AllReduceSum((nint)data, flat.numel());
            else world.Broadcast((nint)data, flat.numel());
        }
        if (average) flat.div_(WorldSize);
        long offset = 0;
        foreach (var tensor in tensors)
        {
            var count = tensor.numel();
            tensor.copy_(flat.narrow(0, offset, count).view_as(tensor));
            offset += count;
        }
    }
}
