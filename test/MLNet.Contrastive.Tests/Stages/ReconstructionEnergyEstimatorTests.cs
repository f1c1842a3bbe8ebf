using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Stages;

public class ReconstructionEnergyEstimatorTests
{
    /// <summary>
    /// The energy stage calibrates on the images it is fitted on (their energies then average 0), scores as the library
    /// does, and saves into a model.zip whose energies a plain ML.NET app in another process reproduces.
    /// </summary>
    [Test]
    public void EnergyStageScoresAsTheLibraryAndLoadsInAPlainMlNetApp()
    {
        using var mae = TestData.NewFolder();
        Evaluation.ReconstructionEnergyTests.TrainTinyMae(mae["m.bin"]);
        using var folder = TestData.NewFolder();
        var rows = TestData.WriteSampleImages(folder, 40);
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(rows);
        float[] Energies(IDataView scored) => [.. scored.GetColumn<VBuffer<float>>("Energy").Select(v => v.DenseValues().Single())];

        float[] scored;
        using (var stage = mlContext.SelfSupervised().ReconstructionEnergy(mae["m.bin"], inputColumnName: nameof(TestData.ImageRow.ImagePath)).Fit(data))
        {
            scored = Energies(stage.Transform(data));
            Assert.That(scored.Average(), Is.EqualTo(0).Within(1e-4), "the reference images' energies are standardised");
            var library = ReconstructionEnergy.Load(mae["m.bin"]);
            var expected = library.Energy(ImageStore.Load(folder.Path, null, library.ImageLoadOptions), stage.Calibration);
            Assert.That(scored.Zip(expected, (a, e) => Math.Abs(a - e)).Max(), Is.LessThanOrEqualTo(1e-4f));
            mlContext.Model.Save(stage, data.Schema, folder["energy.zip"]);
        }

        var sample = TestData.ScoreWithPlainMlNetApp(folder["energy.zip"], folder.Path, folder["scores.csv"]);
        Assert.That(sample.Keys, Is.EqualTo(rows.Select(r => Path.GetFileName(r.ImagePath))));
        Assert.That(sample.Values.Select(v => v.Embedding.Single()).Zip(scored, (a, e) => Math.Abs(a - e)).Max(), Is.LessThanOrEqualTo(1e-5f));
    }

    [Test]
    public void AMissingColumnOrAnotherMethodsRunIsNamed()
    {
        using var folder = TestData.NewFolder();
        Evaluation.ReconstructionEnergyTests.TrainTinyMae(folder["m.bin"], images: 32, batchSize: 32);
        var mlContext = new MLContext(0);
        var data = mlContext.Data.LoadFromEnumerable(new[] { new TestData.ImageRow { ImagePath = "x.png" } });
        Assert.That(() => mlContext.SelfSupervised().ReconstructionEnergy(folder["m.bin"]).Fit(data),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Could not find input column 'Image'"));
        Assert.That(() => mlContext.SelfSupervised().ReconstructionEnergy(folder["nothing"]),
            Throws.TypeOf<FileNotFoundException>().With.Message.Contains("no such checkpoint or run folder"));
    }
}
