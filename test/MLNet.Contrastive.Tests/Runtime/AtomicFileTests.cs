using MLNet.Contrastive.Runtime;

namespace MLNet.Contrastive.Tests.Runtime;

public class AtomicFileTests
{
    [Test]
    public void WritingRemovesTheTemporaryFilesOfKilledWritersOnly()
    {
        using var folder = TestData.NewFolder();
        // 4194305 is above Linux's largest process id, so no such writer runs; process 1 always does.
        File.WriteAllText(folder[".checkpoint.bin.4194305.tmp"], "half a checkpoint");
        File.WriteAllText(folder[".checkpoint.bin.1.tmp"], "a live writer's");
        File.WriteAllText(folder[".history.json.4194305.tmp"], "another file's");

        AtomicFile.WriteAllText(folder["checkpoint.bin"], "whole");

        Assert.That(File.ReadAllText(folder["checkpoint.bin"]), Is.EqualTo("whole"));
        Assert.That(Directory.GetFiles(folder.Path).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { ".checkpoint.bin.1.tmp", ".history.json.4194305.tmp", "checkpoint.bin" }));
    }
}
