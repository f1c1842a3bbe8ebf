using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Training;

/// <summary>
/// Synchronised batch norm and the gathered global batch against one process, in float64 so that only the mathematics
/// can differ: two ranks are two threads of this process exchanging through <see cref="ThreadRanks"/>.
/// </summary>
public class DataParallelMathTests
{
    private const double Tolerance = 1e-10;

    // Rank 0 holds the first `rows` of the 8 images, rank 1 the rest: equal slices (training's), unequal ones and an
    // empty one (MoCo's shuffled key groups, whose members fall on the ranks at random).
    [TestCase(true, 4)]
    [TestCase(false, 4)]
    [TestCase(true, 3)]
    [TestCase(false, 6)]
    [TestCase(true, 0)]
    public void SyncBatchNormOnTwoRanksGivesTheWholeBatchsOutputGradientsAndStatistics(bool spatial, int rows)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        long[] shape = spatial ? [8, 16, 3, 3] : [8, 16];
        var x = (randn(shape, float64, generator: generator) * 2 + 1).requires_grad_(true);
        var probe = randn(shape, float64, generator: generator);
        var whole = Norm(spatial, generator);
        var ranks = ThreadRanks.Group(2);
        var norms = ranks.Select(_ => Norm(spatial, generator)).ToArray();
        foreach (var n in norms) n.load_state_dict(whole.state_dict());
        // A first batch moves the running statistics away from 0 and 1: the second, checked, is centred on a running mean.
        var first = randn(shape, float64, generator: generator) * 3 - 2;
        using (no_grad()) whole.forward(first);
        var output = whole.forward(x);
        (output * probe).sum().backward();

        long[] sizes = [rows, 8 - rows];
        var halves = x.detach().split(sizes).Select(h => h.clone().requires_grad_(true)).ToArray();
        var probes = probe.split(sizes);
        var firsts = first.split(sizes);
        var outputs = new Tensor[2];
        Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, r =>
        {
            using (no_grad())
            using (SyncBatchNorm.Synchronize(ranks[r]))
                norms[r].forward(firsts[r]).Dispose();
            using var rankScope = NewDisposeScope();
            using var synchronized = SyncBatchNorm.Synchronize(ranks[r]);
            var rankOutput = norms[r].forward(halves[r]);
            (rankOutput * probes[r]).sum().backward();
            outputs[r] = rankOutput.detach().clone().DetachFromDisposeScope();
        });

        foreach (var o in outputs) scope.Attach(o);
        Assert.That(Difference(cat(outputs), output), Is.LessThan(Tolerance), "output");
        Assert.That(Difference(cat(halves.Select(h => h.grad!).ToArray()), x.grad!), Is.LessThan(Tolerance), "input gradient");
        // The loss here is the sum of the ranks' losses: its parameter gradient is the sum of theirs (training averages both).
        Assert.That(Difference(norms[0].weight!.grad! + norms[1].weight!.grad!, whole.weight!.grad!), Is.LessThan(Tolerance), "weight gradient");
        Assert.That(Difference(norms[0].bias!.grad! + norms[1].bias!.grad!, whole.bias!.grad!), Is.LessThan(Tolerance), "bias gradient");
        foreach (var n in norms)
        {
            Assert.That(Difference(n.running_mean!, whole.running_mean!), Is.LessThan(Tolerance), "running mean");
            Assert.That(Difference(n.running_var!, whole.running_var!), Is.LessThan(Tolerance), "running variance (unbiased, over the whole batch)");
        }
    }

    [Test]
    public void TheGatheredGlobalBatchGivesEachRankTheWholeLosssGradientOfItsRows()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(4);
        // Two views of 8 images, one process's order: first views of all 8, then second views.
        var z = randn([16, 6], float64, generator: generator).requires_grad_(true);
        var loss = NtXentLoss.Compute(z[..8], z[8..], 0.5);
        loss.backward();

        var ranks = ThreadRanks.Group(2);
        // Rank r holds images 4r … 4r + 3: its first views, then its second views.
        var locals = Enumerable.Range(0, 2).Select(r => cat([z.detach()[(4 * r)..(4 * r + 4)], z.detach()[(8 + 4 * r)..(12 + 4 * r)]]).requires_grad_(true)).ToArray();
        var losses = new double[2];
        Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, r =>
        {
            using var rankScope = NewDisposeScope();
            var global = GlobalBatch.Gather(locals[r], 4, ranks[r]);
            var rankLoss = NtXentLoss.Compute(global[..8], global[8..], 0.5);
            losses[r] = rankLoss.item<double>();
            rankLoss.backward();
        });

        Assert.That(losses, Has.All.EqualTo(loss.item<double>()).Within(Tolerance));
        for (var r = 0; r < 2; r++)
        {
            var expected = cat([z.grad![(4 * r)..(4 * r + 4)], z.grad![(8 + 4 * r)..(12 + 4 * r)]]);
            // Scaled by the 2 ranks, whose parameter gradients training averages.
            Assert.That(Difference(locals[r].grad! / 2, expected), Is.LessThan(Tolerance), $"rank {r}");
        }
    }

    [Test]
    public void ATeacherCacheIsRefusedOverSeveralRanks()
    {
        // Each rank would create and map the cache's files on its first miss, truncating what another rank has mapped.
        var options = new PretrainOptions
        {
            Method = new DistillationOptions { Teacher = "imagenet-resnet18", TeacherCache = "cache" },
            Run = { BatchSize = 64 }, DataParallel = ThreadRanks.Group(2)[0],
        };
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.That(error!.Message, Does.Contain("teacher cache (cache)").And.Contain("2 ranks"));
        options.Method = new DistillationOptions { Teacher = "imagenet-resnet18" };
        Assert.DoesNotThrow(options.Validate);
    }

    private static SyncBatchNorm Norm(bool spatial, Generator generator)
    {
        var norm = spatial ? SyncBatchNorm.TwoD(16) : SyncBatchNorm.OneD(16);
        norm.to(float64);
        using var noGrad = no_grad();
        norm.weight!.copy_(rand(16, float64, generator: generator) + 0.5);
        norm.bias!.copy_(randn(16, float64, generator: generator));
        return norm;
    }

    private static double Difference(Tensor a, Tensor b) => (a - b).abs().max().item<double>();

    /// <summary>Ranks that are threads of one process: each collective waits for all of them and combines their values in float64.</summary>
    private sealed class ThreadRanks(int rank, ThreadRanks.Shared shared) : IDataParallel
    {
        public sealed class Shared(int size)
        {
            public readonly Barrier Barrier = new(size);
            public readonly double[][] Slots = new double[size][];
        }

        public static ThreadRanks[] Group(int size)
        {
            var shared = new Shared(size);
            return Enumerable.Range(0, size).Select(r => new ThreadRanks(r, shared)).ToArray();
        }

        public int Rank => rank;

        public int WorldSize => shared.Slots.Length;

        public void Broadcast(IReadOnlyList<Tensor> tensors) => throw new NotSupportedException();

        public void Average(IReadOnlyList<Tensor> tensors)
        {
            var all = Exchange(cat(tensors.Select(t => t.detach().reshape(-1).to(float64)).ToArray()).data<double>().ToArray());
            var mean = new double[all[0].Length];
            foreach (var values in all)
                for (var i = 0; i < mean.Length; i++) mean[i] += values[i] / all.Length;
            var offset = 0L;
            using var noGrad = no_grad();
            foreach (var t in tensors)
            {
                t.copy_(tensor(mean.AsSpan((int)offset, (int)t.numel()).ToArray(), float64).view_as(t));
                offset += t.numel();
            }
        }

        public Tensor AllGather(Tensor local)
        {
            var all = Exchange(local.detach().reshape(-1).to(float64).data<double>().ToArray());
            return tensor(all.SelectMany(v => v).ToArray(), float64).view([-1, .. local.shape[1..]]).to(local.dtype);
        }

        private double[][] Exchange(double[] local)
        {
            shared.Slots[rank] = local;
            shared.Barrier.SignalAndWait();
            var all = shared.Slots.Select(s => s.ToArray()).ToArray();
            shared.Barrier.SignalAndWait();
            return all;
        }
    }
}
