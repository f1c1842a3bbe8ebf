using Microsoft.ML;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Tests.Data;

public class DataViewReaderTests
{
    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
        public float Score { get; set; }
    }

    [Test]
    public void PathColumnAndImageColumnGiveTheSamePixelsAsTheFolder()
    {
        using var folder = TestData.NewFolder();
        TestData.WriteImage(folder["a/1.png"], 30, 40, seed: 1);
        TestData.WriteImage(folder["b/2.jpg"], 28, 28, seed: 2, gray: true);
        var fromFolder = ImageStore.Load(folder.Path);

        var mlContext = new MLContext(0);
        var rows = mlContext.Data.LoadFromEnumerable(new[]
        {
            new PathRow { ImagePath = folder["a/1.png"], Label = "a" },
            new PathRow { ImagePath = folder["b/2.jpg"], Label = "b" },
        });
        var fromPaths = ImageStore.FromDataView(mlContext, rows, nameof(PathRow.ImagePath), nameof(PathRow.Label));
        Assert.That(fromPaths.Images(0, fromPaths.Count).ToArray(), Is.EqualTo(fromFolder.Images(0, fromFolder.Count).ToArray()));
        Assert.That(fromPaths.LabelNames, Is.EqualTo(new[] { "a", "b" }));

        var images = mlContext.Transforms.LoadImages("Image", null, nameof(PathRow.ImagePath)).Fit(rows).Transform(rows);
        var fromImages = ImageStore.FromDataView(mlContext, images, "Image", nameof(PathRow.Label));
        Assert.That(fromImages.Images(0, fromImages.Count).ToArray(), Is.EqualTo(fromFolder.Images(0, fromFolder.Count).ToArray()));
        Assert.That(fromImages.Labels, Is.EqualTo(new[] { 0, 1 }));
    }

    [Test]
    public void WrongColumnTypeAndMissingColumnUseMlNetWording()
    {
        var mlContext = new MLContext(0);
        var rows = mlContext.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = "x.png", Score = 1 } });
        Assert.That(() => ImageStore.FromDataView(mlContext, rows, nameof(PathRow.Score)),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Schema mismatch for input column 'Score': expected image or text"));
        Assert.That(() => ImageStore.FromDataView(mlContext, rows, "Picture"),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Could not find input column 'Picture'"));
    }
}
