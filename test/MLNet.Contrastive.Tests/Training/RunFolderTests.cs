using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Training;

public class RunFolderTests
{
    [Test]
    public void NamesEveryFileOfTheFolderAndFindsAModelFromItsFolderOrItsRenamedZip()
    {
        using var folder = TestData.NewFolder();
        var run = new RunFolder(folder.Path);
        Assert.That(new[] { run.Checkpoint, run.History, run.HistoryCsv, run.Report, run.ReportHtml, run.Model, run.Encoder, run.Network },
            Is.EqualTo(new[] { "checkpoint.bin", "history.json", "history.csv", "report.json", "report.html", "model.zip", "encoder.onnx", "network.onnx" }
                .Select(f => Path.Combine(folder.Path, f))));

        Assert.That(() => RunFolder.FindModel(folder.Path), Throws.InstanceOf<FileNotFoundException>()
            .With.Message.EqualTo($"{run.Model}: model not found (pass the folder pretrain wrote, or its model.zip)."));
        File.WriteAllBytes(run.Model, []);
        Assert.That(() => RunFolder.FindModel(folder.Path), Throws.InstanceOf<FileNotFoundException>()
            .With.Message.EqualTo($"{run.Encoder}: the encoder that goes with {run.Model} is missing."));
        File.WriteAllBytes(run.Encoder, []);
        Assert.That(RunFolder.FindModel(folder.Path), Is.EqualTo((run.Model, run.Encoder)));
        File.Move(run.Model, folder["renamed.zip"]);
        Assert.That(RunFolder.FindModel(folder["renamed.zip"]), Is.EqualTo((folder["renamed.zip"], run.Encoder)));
    }

    [Test]
    public void FindsTheCheckpointOfAFolderOrAFileAndNamesWhatIsMissing()
    {
        using var folder = TestData.NewFolder();
        var run = new RunFolder(folder.Path);
        Assert.That(() => RunFolder.FindCheckpoint(folder.Path), Throws.InstanceOf<FileNotFoundException>()
            .With.Message.EqualTo($"{folder.Path}: the folder holds no checkpoint.bin; give a pretraining run's folder or its checkpoint."));
        Assert.That(() => RunFolder.FindCheckpoint(folder["none.bin"]), Throws.InstanceOf<FileNotFoundException>()
            .With.Message.EqualTo($"{folder["none.bin"]}: no such checkpoint or run folder."));
        File.WriteAllBytes(run.Checkpoint, []);
        Assert.That(RunFolder.FindCheckpoint(folder.Path), Is.EqualTo(run.Checkpoint));
        Assert.That(RunFolder.FindCheckpoint(run.Checkpoint), Is.EqualTo(run.Checkpoint));
    }
}
