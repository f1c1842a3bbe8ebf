using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Methods;

/// <summary>Settings of <see cref="Jigsaw"/>.</summary>
public sealed class JigsawOptions : MethodOptions
{
    /// <summary>Size P of the permutation set (chosen with the run's seed). Default 100.</summary>
    public int Permutations { get; set; } = 100;

    /// <summary>Hidden size of the P-way head. Default 512.</summary>
    public int HiddenDimension { get; set; } = 512;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Jigsaw(encoder, this, setup.Seed);

    /// <inheritdoc/>
    public override void Validate()
    {
        Range(Permutations, 2, 1000, nameof(Permutations));
        Positive(HiddenDimension, nameof(HiddenDimension));
    }
}

/// <summary>
/// Jigsaw puzzles (Noroozi &amp; Favaro 2016): each image cut into 3×3 jittered tiles (tile side ⌊0.85 · ⌊S/3⌋⌋,
/// at least 7 px, so images need 24 px or more), shuffled by one of P max-min-Hamming permutations; the shared
/// encoder (the one that is exported) embeds every tile, the nine embeddings are concatenated in slot order, and a
/// P-way head names the permutation. The permutation set is a buffer of the module, so checkpoints carry it.
/// </summary>
public sealed class Jigsaw : PretrainingMethod
{
    private readonly ImageEncoder encoder;
    private readonly ProjectionHead head;
    private readonly Tensor permutations;
    private readonly int[][] permutationList;

    /// <summary>Jigsaw puzzles around <paramref name="encoder"/>; the permutation set is drawn with <paramref name="seed"/>.</summary>
    public Jigsaw(ImageEncoder encoder, JigsawOptions options, int seed) : base(nameof(Jigsaw), encoder, options)
    {
        this.encoder = encoder;
        var (permutationCount, hiddenDimension) = (options.Permutations, options.HiddenDimension);
        permutationList = JigsawPuzzle.Permutations(permutationCount, seed);
        permutations = tensor(permutationList.SelectMany(p => p.Select(t => (long)t)).ToArray(), new long[] { permutationCount, JigsawPuzzle.Tiles });
        head = new ProjectionHead(JigsawPuzzle.Tiles * encoder.OutputDimension, hiddenDimension, permutationCount);
        register_buffer("permutations", permutations, persistent: true);
        RegisterComponents();
    }

    /// <summary>The permutation set, [P][9].</summary>
    public IReadOnlyList<int[]> Permutations => permutationList;

    /// <inheritdoc/>
    public override int ViewsPerImage => JigsawPuzzle.Tiles;

    /// <summary>Tile side for images of side <paramref name="size"/>.</summary>
    public static int TileSize(long size)
    {
        if (size < JigsawPuzzle.MinimumImageSize)
            throw new ArgumentException($"Jigsaw puzzles need images of at least {JigsawPuzzle.MinimumImageSize} px per side (3 × 3 tiles of {JigsawPuzzle.MinimumTile} px and a jitter gap); these are {size} px. Resize them (--image-size).");
        return Math.Max(JigsawPuzzle.MinimumTile, (int)(size / JigsawPuzzle.Grid * 0.85));
    }

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        var generator = context.Generator;
        using var scope = NewDisposeScope();
        var square = RotationPrediction.CenterSquare(images);
        long b = square.shape[0], c = square.shape[1];
        var tiles = JigsawPuzzle.CutTiles(square, TileSize(square.shape[2]), generator);
        var choice = SampleDraws.RandInt(permutationList.Length, [b], generator);
        var shuffled = JigsawPuzzle.Shuffle(tiles, choice.data<long>().ToArray().Select(p => permutationList[p]).ToArray());
        context.Mark("views");
        var features = encoder.forward(shuffled.view(b * JigsawPuzzle.Tiles, c, tiles.shape[3], tiles.shape[4]));
        var logits = head.forward(features.view(b, JigsawPuzzle.Tiles * encoder.OutputDimension));
        return F.cross_entropy(logits, choice.to(images.device)).MoveToOuterDisposeScope();
    }
}
