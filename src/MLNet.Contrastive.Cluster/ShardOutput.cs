using System.Globalization;
using MLNet.Contrastive.Runtime;
using Parquet.Serialization;

namespace MLNet.Contrastive.Cluster;

/// <summary>Where a job's files go inside its output folder.</summary>
public static class ShardLayout
{
    /// <summary>The manifest written when the job completes.</summary>
    public const string ManifestFile = "manifest.json";

    /// <summary>Shard <paramref name="shard"/>'s image paths, one a line (written at submit time).</summary>
    public static string InputList(string outputFolder, int shard) => Path.Combine(outputFolder, "inputs", $"shard-{shard:D5}.txt");

    /// <summary>Shard <paramref name="shard"/>'s output file name.</summary>
    public static string OutputFile(int shard, string format) => $"shard-{shard:D5}.{format}";
}

/// <summary>One row of a shard's Parquet file: the image path (the key) and its embedding.</summary>
public sealed class EmbeddingRow
{
    /// <summary>The image file.</summary>
    public string Path { get; set; } = "";
    /// <summary>Its embedding.</summary>
    public float[] Embedding { get; set; } = [];
}

/// <summary>
/// Writes and reads shard files. A shard is written whole, by temp file and rename, and always to the same name, so
/// a shard run again after a lost silo replaces its file instead of adding rows.
/// </summary>
public static class ShardOutput
{
    /// <summary>Writes <paramref name="batch"/> to <paramref name="path"/> as Parquet, or CSV when it ends in .csv.</summary>
    public static void Write(string path, ScoredBatch batch)
    {
        if (path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
            AtomicFile.Write(path, stream =>
            {
                using var csv = new StreamWriter(stream, leaveOpen: true);
                csv.WriteLine("path" + string.Concat(Enumerable.Range(0, batch.Dimension).Select(d => $",e{d}")));
                for (var i = 0; i < batch.Paths.Count; i++)
                {
                    csv.Write(Quote(batch.Paths[i]));
                    foreach (var v in batch.Values.AsSpan(i * batch.Dimension, batch.Dimension)) csv.Write("," + v.ToString("R", CultureInfo.InvariantCulture));
                    csv.WriteLine();
                }
            });
        else
            AtomicFile.Write(path, stream => ParquetSerializer.SerializeAsync(Rows(batch), stream).GetAwaiter().GetResult());
    }

    /// <summary>The rows of a shard file written by <see cref="Write"/>.</summary>
    public static IReadOnlyList<EmbeddingRow> Read(string path)
    {
        if (!path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
        {
            using var stream = File.OpenRead(path);
            return [.. ParquetSerializer.DeserializeAsync<EmbeddingRow>(stream).GetAwaiter().GetResult().Data];
        }
        // The header names the columns; paths with commas are quoted, so the values are the last D fields.
        var lines = File.ReadAllLines(path);
        var dimension = lines[0].Split(',').Length - 1;
        return lines.Skip(1).Select(line =>
        {
            var fields = line.Split(',');
            var key = string.Join(",", fields[..^dimension]);
            if (key.StartsWith('"')) key = key[1..^1].Replace("\"\"", "\"");
            return new EmbeddingRow { Path = key, Embedding = fields[^dimension..].Select(f => float.Parse(f, CultureInfo.InvariantCulture)).ToArray() };
        }).ToList();
    }

    private static IEnumerable<EmbeddingRow> Rows(ScoredBatch batch) =>
        batch.Paths.Select((path, i) => new EmbeddingRow { Path = path, Embedding = batch.Values.AsSpan(i * batch.Dimension, batch.Dimension).ToArray() });

    private static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n']) < 0 ? field : "\"" + field.Replace("\"", "\"\"") + "\"";
}
