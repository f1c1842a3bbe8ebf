namespace MLNet.Contrastive.Cluster.Tests;

/// <summary>Shard files: written whole under one name, so writing a shard again replaces its rows instead of adding them.</summary>
public class ShardOutputTests
{
    private static ScoredBatch Batch() => new()
    {
        Paths = ["/data/a.png", "/data/with, comma.png", "/data/\"quoted\".png"],
        Values = [1f, -2.5f, 3.25e-7f, 0f, float.Epsilon, -0.1f],
        Dimension = 2,
    };

    [TestCase("parquet")]
    [TestCase("csv")]
    public void AShardWrittenTwiceHoldsEachRowOnceWithItsValues(string format)
    {
        var folder = Path.Combine(ClusterFixture.Folder, "shard-output-" + format);
        var path = Path.Combine(folder, ShardLayout.OutputFile(7, format));
        ShardOutput.Write(path, Batch());
        ShardOutput.Write(path, Batch());

        var rows = ShardOutput.Read(path);
        Assert.That(Path.GetFileName(path), Is.EqualTo($"shard-00007.{format}"));
        Assert.That(rows.Select(r => r.Path), Is.EqualTo(Batch().Paths));
        Assert.That(rows.SelectMany(r => r.Embedding), Is.EqualTo(Batch().Values), "values round-trip exactly");
        Assert.That(Directory.GetFiles(folder), Has.Length.EqualTo(1), "no temporary file is left beside it");
    }
}
