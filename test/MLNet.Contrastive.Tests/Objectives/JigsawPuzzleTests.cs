using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class JigsawPuzzleTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [Test]
    public void PermutationSetHasALargeMinimumHammingDistanceAndIsSeeded()
    {
        var set = JigsawPuzzle.Permutations(100, seed: 0);
        Assert.That(set, Has.Length.EqualTo(100));
        Assert.That(set.All(p => p.Order().SequenceEqual(Enumerable.Range(0, 9))), Is.True, "each is a permutation of the 9 tiles");
        static int Minimum(int[][] permutations) =>
            permutations.SelectMany((a, i) => permutations.Skip(i + 1).Select(b => JigsawPuzzle.Hamming(a, b))).Min();
        // Measured: greedy max-min selection reaches 6 for 100 permutations; 100 random ones have pairs at 2 or 3.
        var random = new Random(0);
        var randomSet = Enumerable.Range(0, 100).Select(_ => Enumerable.Range(0, 9).OrderBy(_ => random.Next()).ToArray()).ToArray();
        Assert.That(Minimum(set), Is.GreaterThanOrEqualTo(6));
        Assert.That(Minimum(randomSet), Is.LessThan(Minimum(set)));
        Assert.That(JigsawPuzzle.Permutations(100, seed: 0), Is.EqualTo(set));
        Assert.That(JigsawPuzzle.Permutations(100, seed: 1), Is.Not.EqualTo(set));
    }

    [Test]
    public void IdentityPermutationReassemblesTheImage()
    {
        using var images = TestData.SampleTrain(2).Batch([0, 1]);
        // Tiles the size of their cells leave no jitter: the 27×27 top-left crop comes back unchanged.
        using var tiles = JigsawPuzzle.CutTiles(images, tile: 9, generator: null);
        using var identity = JigsawPuzzle.Shuffle(tiles, [Enumerable.Range(0, 9).ToArray(), Enumerable.Range(0, 9).ToArray()]);
        using var assembled = JigsawPuzzle.Assemble(identity);
        using var crop = images.narrow(2, 0, 27).narrow(3, 0, 27);
        Assert.That((assembled - crop).abs().max().item<float>(), Is.Zero);
    }

    [Test]
    public void ShuffleMovesTileKIntoSlotWherePermutationNamesIt()
    {
        using var tiles = arange(9, dtype: ScalarType.Float32).view(1, 9, 1, 1, 1).expand(1, 9, 1, 2, 2).contiguous();
        int[] permutation = [8, 0, 7, 1, 6, 2, 5, 3, 4];
        using var shuffled = JigsawPuzzle.Shuffle(tiles, [permutation]);
        Assert.That(Enumerable.Range(0, 9).Select(s => (int)shuffled[0, s, 0, 0, 0].item<float>()), Is.EqualTo(permutation));
    }

    [Test]
    public void TilesAreJitteredInsideTheirCells()
    {
        using var images = arange(28 * 28, dtype: ScalarType.Float32).view(1, 1, 28, 28);
        using var generator = new Generator(3);
        using var tiles = JigsawPuzzle.CutTiles(images, tile: 7, generator);
        for (var t = 0; t < 9; t++)
        {
            var corner = (int)tiles[0, t, 0, 0, 0].item<float>();
            int y = corner / 28, x = corner % 28, cellY = t / 3 * 9, cellX = t % 3 * 9;
            Assert.That(y, Is.InRange(cellY, cellY + 2), $"tile {t} row");
            Assert.That(x, Is.InRange(cellX, cellX + 2), $"tile {t} column");
            // The whole tile is the 7×7 block of the image below and right of its corner.
            using var block = corner + 28 * arange(7, dtype: ScalarType.Float32).view(7, 1) + arange(7, dtype: ScalarType.Float32);
            Assert.That((tiles[0, t, 0] - block).abs().max().item<float>(), Is.Zero, $"tile {t} pixels");
        }
    }

    [Test]
    public void TooSmallImagesAreRejectedWithTheMinimumSize()
    {
        Assert.That(Jigsaw.TileSize(28), Is.EqualTo(7));
        Assert.That(Jigsaw.TileSize(64), Is.EqualTo(17));
        Assert.That(() => Jigsaw.TileSize(20), Throws.ArgumentException.With.Message.Contains("at least 24 px"));
    }
}
