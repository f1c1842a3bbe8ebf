using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Methods;

public class EmbeddingQueueTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    private sealed class Owner : nn.Module
    {
        public Owner(Tensor initial, bool counted) : base(nameof(Owner))
        {
            Queue = new EmbeddingQueue(this, initial, "rows", "position", counted ? "count" : null);
        }

        public EmbeddingQueue Queue { get; }
    }

    private static Tensor Block(float first, long n, long d = 2) => arange(first, first + n * d).view(n, d);

    [Test]
    public void FillsInOrderThenOverwritesTheOldestRows()
    {
        var owner = new Owner(zeros(5, 2), counted: true);
        var queue = owner.Queue;
        Assert.That((queue.Count, queue.Position, queue.IsFull), Is.EqualTo((0L, 0L, false)));
        queue.Enqueue(Block(0, 3));
        Assert.That((queue.Count, queue.Position, queue.IsFull), Is.EqualTo((3L, 3L, false)));
        queue.Enqueue(Block(100, 3));
        // Rows 3, 4 take the first two new rows; the third wraps to row 0, over the oldest.
        Assert.That((queue.Count, queue.Position, queue.IsFull), Is.EqualTo((5L, 1L, true)));
        Assert.That(queue.Rows.data<float>().ToArray(), Is.EqualTo(new float[] { 104, 105, 2, 3, 4, 5, 100, 101, 102, 103 }));
    }

    [Test]
    public void GroupsShareOnePositionAndAnUncountedQueueStartsFull()
    {
        var owner = new Owner(zeros(2, 3, 1), counted: false);
        Assert.That(owner.Queue.IsFull, Is.True);
        owner.Queue.Enqueue(stack(new[] { Block(1, 2, 1), Block(10, 2, 1) }));
        Assert.That(owner.Queue.Rows.data<float>().ToArray(), Is.EqualTo(new float[] { 1, 2, 0, 10, 11, 0 }));
        Assert.That(owner.Queue.Position, Is.EqualTo(2));
    }

    [Test]
    public void TheQueueIsInTheStateDictAndFollowsModuleTo()
    {
        var owner = new Owner(zeros(4, 2), counted: true);
        owner.Queue.Enqueue(Block(1, 3).requires_grad_(true));
        Assert.That(owner.state_dict().Keys, Is.EquivalentTo(new[] { "rows", "position", "count" }));
        Assert.That(owner.Queue.Rows.requires_grad, Is.False, "rows are stored detached");

        // Module.to replaces the buffers; the queue reads and writes the new ones.
        owner.to(ScalarType.Float64);
        Assert.That(owner.Queue.Rows.dtype, Is.EqualTo(ScalarType.Float64));
        owner.Queue.Enqueue(Block(50, 2));
        Assert.That(owner.get_buffer("rows")!.data<double>().ToArray(), Is.EqualTo(new double[] { 52, 53, 3, 4, 5, 6, 50, 51 }));
        Assert.That((owner.Queue.Count, owner.Queue.Position), Is.EqualTo((4L, 1L)));

        var copy = new Owner(zeros(4, 2, dtype: ScalarType.Float64), counted: true);
        copy.load_state_dict(owner.state_dict());
        Assert.That((copy.Queue.Count, copy.Queue.Position), Is.EqualTo((4L, 1L)));
        Assert.That(copy.Queue.Rows.data<double>().ToArray(), Is.EqualTo(owner.Queue.Rows.data<double>().ToArray()));
    }

    private sealed class Clashing : nn.Module
    {
        private readonly EmbeddingQueue rows;

        public Clashing() : base(nameof(Clashing)) => rows = new EmbeddingQueue(this, zeros(3, 2), "rows", "position");
    }

    [Test]
    public void AFieldNamedLikeTheBufferIsRefused() =>
        Assert.That(() => new Clashing(), Throws.ArgumentException.With.Message.Contains("Clashing has a field 'rows' of type EmbeddingQueue"));

    [Test]
    public void RowsThatDoNotFitAreNamed()
    {
        var owner = new Owner(zeros(3, 2), counted: true);
        Assert.That(() => owner.Queue.Enqueue(zeros(4, 2)), Throws.ArgumentException.With.Message.Contains("4 rows do not fit a queue of 3"));
        Assert.That(() => owner.Queue.Enqueue(zeros(2, 5)), Throws.ArgumentException.With.Message.Contains("[2, 5]"));
    }
}
