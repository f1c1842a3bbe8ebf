using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// A first-in-first-out ring of detached embeddings — MoCo's negative keys, SwAV's earlier batches, NNCLR's support
/// set — kept as buffers of the method that owns it, under names the method chooses, so checkpoints carry the rows,
/// the write position and the fill count, and a resume continues the queue where it stopped. Like lightly's
/// <c>lightly/models/modules/memory_bank.py</c>, but a ring with a pointer instead of a shifted tensor. The buffers are
/// looked up in the owner on every use, never held, because <c>Module.to</c> replaces them (and writes the new tensor
/// into any field of the owner named like a buffer: the field holding the queue must be named otherwise).
/// </summary>
public sealed class EmbeddingQueue
{
    private readonly nn.Module owner;
    private readonly string rowsName, positionName;
    private readonly string? countName;

    /// <summary>
    /// Registers <paramref name="initial"/> ([K, D], or [G, K, D] for G queues written together, e.g. one per view)
    /// on <paramref name="owner"/> as the buffer <paramref name="name"/>, and the write position as
    /// <paramref name="positionName"/>. With <paramref name="countName"/> the fill count is a buffer too and the queue
    /// starts empty; without it the initial rows count as entries (MoCo's random keys), so the queue starts full.
    /// </summary>
    public EmbeddingQueue(nn.Module owner, Tensor initial, string name, string positionName, string? countName = null)
    {
        if (initial.ndim is not (2 or 3)) throw new ArgumentException($"A queue's rows must be [K, D] or [G, K, D]; got [{string.Join(", ", initial.shape)}].", nameof(initial));
        foreach (var buffer in new[] { name, positionName, countName }.OfType<string>())
            if (owner.GetType().GetField(buffer, System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic) is { } field && field.FieldType != typeof(Tensor))
                throw new ArgumentException($"{owner.GetType().Name} has a field '{buffer}' of type {field.FieldType.Name}; Module.to would write the buffer '{buffer}' into it. Name the field or the buffer otherwise.", nameof(name));
        this.owner = owner;
        (rowsName, this.positionName, this.countName) = (name, positionName, countName);
        Size = initial.shape[^2];
        owner.register_buffer(name, initial);
        owner.register_buffer(positionName, zeros(1, dtype: ScalarType.Int64));
        if (countName is not null) owner.register_buffer(countName, zeros(1, dtype: ScalarType.Int64));
    }

    /// <summary>Rows K the queue holds.</summary>
    public long Size { get; }

    /// <summary>The rows [K, D] (or [G, K, D]) in storage order; the oldest is at <see cref="Position"/> once the queue is full.</summary>
    public Tensor Rows => Buffer(rowsName);

    /// <summary>Where the next rows are written: the oldest row once the queue is full.</summary>
    public long Position => Buffer(positionName).item<long>();

    /// <summary>Rows written so far, at most <see cref="Size"/>; rows 0…Count−1 are the filled ones.</summary>
    public long Count => countName is null ? Size : Buffer(countName).item<long>();

    /// <summary>Whether every row holds an entry.</summary>
    public bool IsFull => Count >= Size;

    /// <summary>
    /// Writes <paramref name="rows"/> [n, D] (or [G, n, D]), detached, over the n oldest rows, wrapping around the end;
    /// n ≤ <see cref="Size"/>.
    /// </summary>
    public void Enqueue(Tensor rows)
    {
        var queue = Rows;
        var n = rows.shape[^2];
        if (rows.ndim != queue.ndim || rows.shape[^1] != queue.shape[^1] || (queue.ndim == 3 && rows.shape[0] != queue.shape[0]))
            throw new ArgumentException($"Rows [{string.Join(", ", rows.shape)}] do not fit a queue of [{string.Join(", ", queue.shape)}].", nameof(rows));
        if (n > Size) throw new ArgumentException($"{n} rows do not fit a queue of {Size}.", nameof(rows));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var start = Position;
        var slots = (arange(n, dtype: ScalarType.Int64) + start).remainder(Size).to(queue.device);
        queue.index_copy_(queue.ndim - 2, slots, rows.detach().to(queue.dtype).to(queue.device));
        Buffer(positionName).fill_((start + n) % Size);
        if (countName is not null) Buffer(countName).fill_(Math.Min(Size, Count + n));
    }

    private Tensor Buffer(string name) =>
        owner.get_buffer(name) ?? throw new InvalidOperationException($"{owner.GetName()} has no buffer '{name}'.");
}
