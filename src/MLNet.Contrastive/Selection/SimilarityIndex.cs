using Cloud.Unum.USearch;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Selection;

/// <summary>Settings of a <see cref="SimilarityIndex"/> (USearch's HNSW graph).</summary>
public sealed class SimilarityIndexOptions
{
    /// <summary>Graph neighbours per node (HNSW's M). Default 16.</summary>
    public int Connectivity { get; set; } = 16;

    /// <summary>Candidates examined while adding a vector (efConstruction). Default 128.</summary>
    public int ExpansionAdd { get; set; } = 128;

    /// <summary>Candidates examined per query (ef); more is slower and finds more of the true neighbours. Default 64.</summary>
    public int ExpansionSearch { get; set; } = 64;
}

/// <summary>
/// Approximate cosine nearest neighbours over image embeddings, on disk: USearch's HNSW index (index.usearch) and the
/// images' sources, one per line (sources.txt), in one folder. <see cref="Exact"/> is the brute-force reference.
/// </summary>
public sealed class SimilarityIndex : IDisposable
{
    /// <summary>The files an index folder holds.</summary>
    public const string IndexFile = "index.usearch", SourcesFile = "sources.txt";

    private readonly USearchIndex index;

    private SimilarityIndex(USearchIndex index, IReadOnlyList<string> sources, int dimension)
    {
        this.index = index;
        Sources = sources;
        Dimension = dimension;
    }

    /// <summary>Where each row came from (an image path, or an IDX file's image number), row by row.</summary>
    public IReadOnlyList<string> Sources { get; }

    /// <summary>The embedding dimension D.</summary>
    public int Dimension { get; }

    /// <summary>The number of indexed rows.</summary>
    public int Count => Sources.Count;

    /// <summary>Indexes every row of <paramref name="embeddings"/>; <paramref name="sources"/> name the rows (one per row).</summary>
    public static SimilarityIndex Build(Embeddings embeddings, IReadOnlyList<string> sources, SimilarityIndexOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        if (sources.Count != embeddings.Count) throw new ArgumentException($"sources: {sources.Count:N0} names for {embeddings.Count:N0} embeddings.", nameof(sources));
        if (sources.Any(s => s.Contains('\n'))) throw new ArgumentException("sources: a name holds a line break.", nameof(sources));
        options ??= new SimilarityIndexOptions();
        var index = new USearchIndex(MetricKind.Cos, ScalarKind.Float32, (ulong)embeddings.Dimension,
            (ulong)options.Connectivity, (ulong)options.ExpansionAdd, (ulong)options.ExpansionSearch, false);
        for (var i = 0; i < embeddings.Count; i++) index.Add((ulong)i, embeddings.Row(i).ToArray());
        return new SimilarityIndex(index, sources.ToArray(), embeddings.Dimension);
    }

    /// <summary>Writes index.usearch and sources.txt into <paramref name="folder"/> (created if missing).</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        index.Save(Path.Combine(folder, IndexFile));
        Runtime.AtomicFile.WriteAllText(Path.Combine(folder, SourcesFile), string.Join('\n', Sources) + "\n");
    }

    /// <summary>Opens a saved index; <paramref name="view"/> maps the file instead of reading it into memory.</summary>
    public static SimilarityIndex Open(string folder, bool view = true)
    {
        var (indexPath, sourcesPath) = (Path.Combine(folder, IndexFile), Path.Combine(folder, SourcesFile));
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"{indexPath}: no similarity index there (build one with `similar --data`).", indexPath);
        if (!File.Exists(sourcesPath)) throw new FileNotFoundException($"{sourcesPath}: the index's list of images is missing.", sourcesPath);
        var sources = File.ReadAllLines(sourcesPath);
        USearchIndex index;
        try
        {
            index = new USearchIndex(indexPath, view);
        }
        catch (USearchException e)
        {
            throw new InvalidDataException($"{indexPath}: not a USearch index ({e.Message}).", e);
        }
        if ((int)index.Size() != sources.Length)
        {
            index.Dispose();
            throw new InvalidDataException($"{folder}: the index holds {index.Size():N0} vectors but {SourcesFile} names {sources.Length:N0} images.");
        }
        return new SimilarityIndex(index, sources, (int)index.Dimensions());
    }

    /// <summary>The (at most) <paramref name="k"/> rows most similar to <paramref name="query"/> [D], most similar first, with their cosine similarities.</summary>
    public (int[] Rows, float[] Similarities) Search(ReadOnlySpan<float> query, int k)
    {
        if (query.Length != Dimension) throw new ArgumentException($"query: {query.Length} values, but the index holds {Dimension}-d embeddings.", nameof(query));
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive.");
        var found = index.Search(query.ToArray(), k, out var keys, out var distances);
        return (keys.Take(found).Select(key => (int)key).ToArray(), distances.Take(found).Select(d => 1 - d).ToArray());
    }

    /// <summary>The exact <paramref name="k"/> nearest rows of <paramref name="embeddings"/> (cosine) to each of <paramref name="queries"/>: [Q][k].</summary>
    public static int[][] Exact(Embeddings embeddings, Embeddings queries, int k)
    {
        var database = VectorMath.Normalized(embeddings);
        var (indices, _) = ExactNeighbours.Nearest(database, embeddings.Count, VectorMath.Normalized(queries), queries.Count, embeddings.Dimension, k);
        k = Math.Min(k, embeddings.Count);
        return Enumerable.Range(0, queries.Count).Select(q => indices[(q * k)..((q + 1) * k)]).ToArray();
    }

    /// <inheritdoc/>
    public void Dispose() => index.Dispose();
}
