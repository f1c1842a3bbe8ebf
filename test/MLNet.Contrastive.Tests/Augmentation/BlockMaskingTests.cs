using MLNet.Contrastive.Augmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Augmentation;

public class BlockMaskingTests
{
    private static BlockMask Sample(int seed, int batch = 6, int rows = 7, int columns = 7)
    {
        using var generator = new Generator((ulong)seed);
        return new BlockMasking().Sample(batch, rows, columns, generator);
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void FourRectangularTargetBlocksOfI_JepaSizePerImage(int seed)
    {
        var mask = Sample(seed);
        Assert.That(mask.Targets.shape[0], Is.EqualTo(4 * 6), "M = 4 blocks of each of the 6 images");
        var size = mask.Targets.shape[1];
        // 15–20 % of 49 patches is 7–9; rounding the sides of an aspect 0.75–1.5 block gives 6–12.
        Assert.That(size, Is.InRange(6, 12));
        for (var b = 0; b < mask.Targets.shape[0]; b++)
        {
            var cells = mask.Targets[b].data<long>().ToArray();
            Assert.That(cells.Distinct().Count(), Is.EqualTo(cells.Length));
            Assert.That(cells, Is.All.InRange(0, 48));
            var (rows, columns) = (cells.Select(c => c / 7).ToArray(), cells.Select(c => c % 7).ToArray());
            Assert.That((rows.Max() - rows.Min() + 1) * (columns.Max() - columns.Min() + 1), Is.EqualTo(cells.Length), $"block {b} is a filled rectangle");
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void ContextHoldsNoTargetPatch(int seed)
    {
        var mask = Sample(seed);
        Assert.That(mask.Context.shape[0], Is.EqualTo(6));
        Assert.That(mask.Context.shape[1], Is.InRange(4, 36), "at least MinimumContext patches; a context block is at most 6 × 6 on a 7 × 7 grid");
        for (var i = 0; i < 6; i++)
        {
            var context = mask.Context[i].data<long>().ToArray();
            Assert.That(context, Is.Ordered.Ascending.And.Unique);
            var targets = Enumerable.Range(0, 4).SelectMany(m => mask.Targets[m * 6 + i].data<long>().ToArray());
            Assert.That(context.Intersect(targets), Is.Empty, $"image {i}'s context overlaps its targets");
        }
    }

    [Test]
    public void TheSameSeedGivesTheSameMasksAndAnotherSeedOthers()
    {
        var (first, again, other) = (Sample(9, rows: 8, columns: 8), Sample(9, rows: 8, columns: 8), Sample(10, rows: 8, columns: 8));
        Assert.That(Same(again.Context, first.Context) && Same(again.Targets, first.Targets), Is.True);
        Assert.That(Same(other.Targets, first.Targets), Is.False);
        Assert.That(first.Targets.max().item<long>(), Is.LessThan(64));
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Test]
    public void TooSmallAGridIsRefused() =>
        Assert.That(() => Sample(1, rows: 1, columns: 7), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("2 × 2"));
}
