using MLNet.Contrastive.Augmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// The jigsaw pretext task (Noroozi &amp; Favaro 2016): an image cut into a 3×3 grid of tiles, shuffled by one of P
/// fixed permutations; the network names the permutation. Each tile is a random crop inside its grid cell, so
/// that edges and the gaps between tiles do not give the answer away.
/// </summary>
public static class JigsawPuzzle
{
    /// <summary>Tiles per side (3) and tiles per puzzle (9).</summary>
    public const int Grid = 3, Tiles = Grid * Grid;

    /// <summary>Tiles are at least this many pixels wide: images need at least 3 × (MinimumTile + 1) = 24 px per side.</summary>
    public const int MinimumTile = 7;

    /// <summary>Smallest image side the task accepts.</summary>
    public const int MinimumImageSize = Grid * (MinimumTile + 1);

    /// <summary>
    /// P permutations of the 9 tiles with a large minimum pairwise Hamming distance: greedy max-min selection over
    /// all 9! permutations, the first drawn at random with <paramref name="seed"/>; each next one is the permutation
    /// farthest (in minimum Hamming distance) from those chosen. (The paper's algorithm maximises the average
    /// distance; max-min guarantees the minimum.) Returns [P][9].
    /// </summary>
    public static int[][] Permutations(int count, int seed)
    {
        if (count is < 2 or > 1000) throw new ArgumentOutOfRangeException(nameof(count), count, "Use between 2 and 1000 permutations.");
        var all = AllPermutations();
        var minDistance = Enumerable.Repeat(int.MaxValue, all.Length).ToArray();
        var chosen = new List<int[]>();
        var next = new Random(seed).Next(all.Length);
        while (true)
        {
            var pick = all[next];
            chosen.Add(pick);
            if (chosen.Count == count) return chosen.ToArray();
            var best = -1;
            for (var i = 0; i < all.Length; i++)
            {
                var distance = 0;
                var candidate = all[i];
                for (var t = 0; t < Tiles; t++) if (candidate[t] != pick[t]) distance++;
                if (distance < minDistance[i]) minDistance[i] = distance;
                if (best < 0 || minDistance[i] > minDistance[best]) best = i;
            }
            next = best;
        }
    }

    /// <summary>Number of positions at which two permutations differ.</summary>
    public static int Hamming(int[] a, int[] b) => a.Zip(b).Count(p => p.First != p.Second);

    /// <summary>
    /// Cuts each image [B, C, S, S] into 9 tiles [B, 9, C, T, T] in row-major grid order: cell side
    /// ⌊S/3⌋, tile side T = <paramref name="tile"/>, each tile at a random offset inside its cell (drawn per tile
    /// with <paramref name="generator"/>; centred when the generator is null).
    /// </summary>
    public static Tensor CutTiles(Tensor images, int tile, Generator? generator)
    {
        long b = images.shape[0], c = images.shape[1], height = images.shape[2], width = images.shape[3];
        var cell = Math.Min(height, width) / Grid;
        if (tile > cell || tile < 1) throw new ArgumentOutOfRangeException(nameof(tile), tile, $"Tiles must fit their {cell}-pixel cells.");
        var slack = cell - tile;
        using var scope = NewDisposeScope();
        var offsets = generator is null
            ? full(new long[] { b, Tiles, 2 }, slack / 2, dtype: ScalarType.Int64)
            : SampleDraws.RandInt(slack + 1, [b, Tiles, 2], generator);
        // Pixel rows and columns of every tile, [B, 9, T]: its cell's origin, its offset, then 0 … T − 1.
        var slots = arange(Tiles, dtype: ScalarType.Int64);
        var pixels = arange(tile, dtype: ScalarType.Int64);
        var rows = ((slots.div(Grid, RoundingMode.floor) * cell).unsqueeze(0) + offsets[.., .., 0]).unsqueeze(-1) + pixels;
        var columns = ((slots % Grid * cell).unsqueeze(0) + offsets[.., .., 1]).unsqueeze(-1) + pixels;
        var perTile = images.unsqueeze(1).expand(b, Tiles, c, height, width);
        var tileRows = perTile.gather(3, rows.to(images.device).view(b, Tiles, 1, tile, 1).expand(b, Tiles, c, tile, width));
        return tileRows.gather(4, columns.to(images.device).view(b, Tiles, 1, 1, tile).expand(b, Tiles, c, tile, tile)).MoveToOuterDisposeScope();
    }

    /// <summary>tiles [B, 9, …] and one permutation per image [B][9] → slot s of image n holds tile permutation[n][s].</summary>
    public static Tensor Shuffle(Tensor tiles, int[][] permutationPerImage)
    {
        var order = tensor(permutationPerImage.SelectMany(p => p.Select(t => (long)t)).ToArray(), new long[] { permutationPerImage.Length, Tiles })
            .to(tiles.device);
        var index = order.view(order.shape[0], Tiles, 1, 1, 1).expand(tiles.shape);
        return tiles.gather(1, index);
    }

    /// <summary>tiles [B, 9, C, T, T] in row-major slot order → images [B, C, 3T, 3T].</summary>
    public static Tensor Assemble(Tensor tiles)
    {
        long b = tiles.shape[0], c = tiles.shape[2], t = tiles.shape[3];
        return tiles.view(b, Grid, Grid, c, t, t).permute(0, 3, 1, 4, 2, 5).reshape(b, c, Grid * t, Grid * t);
    }

    private static int[][] AllPermutations()
    {
        var result = new List<int[]>(362_880);
        var current = Enumerable.Range(0, Tiles).ToArray();
        void Permute(int k)
        {
            if (k == Tiles) { result.Add((int[])current.Clone()); return; }
            for (var i = k; i < Tiles; i++)
            {
                (current[k], current[i]) = (current[i], current[k]);
                Permute(k + 1);
                (current[k], current[i]) = (current[i], current[k]);
            }
        }
        Permute(0);
        return result.ToArray();
    }
}
