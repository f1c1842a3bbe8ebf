using Microsoft.ML;
using MLNet.Contrastive.Stages;

namespace MLNet.Contrastive.Tests.Stages;

public class SavedModelTests
{
    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
    }

    [Test]
    public void TruncatedModelZipIsNamed()
    {
        using var folder = TestData.NewFolder();
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(new[] { new Row { ImagePath = "a.png" } });
        mlContext.Model.Save(mlContext.Transforms.CopyColumns("Copy", nameof(Row.ImagePath)).Fit(data), data.Schema, folder["whole.zip"]);
        File.WriteAllBytes(folder["cut.zip"], File.ReadAllBytes(folder["whole.zip"])[..200]);
        Assert.That(() => SavedModel.Load(mlContext, folder["cut.zip"], out _),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["cut.zip"] + ": not a readable ML.NET model"));
        File.WriteAllText(folder["text.zip"], "not a zip");
        Assert.That(() => SavedModel.Load(mlContext, folder["text.zip"], out _),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["text.zip"] + ": not a readable ML.NET model"));
        Assert.That(() => SavedModel.Load(mlContext, folder["none.zip"], out _), Throws.TypeOf<FileNotFoundException>().With.Message.Contains("none.zip"));
    }

    [Test]
    public void ModelOfAnotherKindIsNamed()
    {
        using var folder = TestData.NewFolder();
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(new[] { new Row { ImagePath = "a.png" } });
        mlContext.Model.Save(mlContext.Transforms.CopyColumns("Copy", nameof(Row.ImagePath)).Fit(data), data.Schema, folder["other.zip"]);
        var model = SavedModel.Load(mlContext, folder["other.zip"], out var schema);
        Assert.That(() => SavedModel.PathColumn(folder["other.zip"], schema, model, "Embedding"),
            Throws.TypeOf<InvalidDataException>().With.Message.EqualTo($"{folder["other.zip"]}: the model has no 'Embedding' output column; it is not an MLNet.Contrastive model of that kind."));
    }
}
