using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Tests.Data;

/// <summary>Channels and size read from the data, so that RGB photos are not silently read as 28 px grey.</summary>
public class ImageProbeTests
{
    [Test]
    public void AFolderWithOneColourImageIsRgbAndItsMedianSizeIsReported()
    {
        using var folder = TestData.NewFolder();
        TestData.WriteImage(folder["a/1.png"], 300, 200, 1, gray: true);
        TestData.WriteImage(folder["a/2.png"], 320, 240, 2, gray: true);
        TestData.WriteImage(folder["b/3.png"], 400, 260, 3);
        File.WriteAllText(folder["b/4.png"], "not an image");
        var probe = ImageProbe.Of(folder.Path);
        Assert.That(probe, Is.EqualTo(new ImageProbe(3, 240, 320, 3)));
    }

    [Test]
    public void AGreyFolderIsOneChannel()
    {
        using var folder = TestData.NewFolder();
        for (var i = 0; i < 3; i++) TestData.WriteImage(folder[$"{i}.png"], 40, 30, i, gray: true);
        Assert.That(ImageProbe.Of(folder.Path), Is.EqualTo(new ImageProbe(1, 30, 40, 3)));
    }

    [Test]
    public void AnIdxFileIsReadFromItsHeaderAlone()
    {
        // The bundled Fashion-MNIST sample: gzip, [N, 28, 28].
        var probe = ImageProbe.Of(TestData.TrainImages);
        Assert.That((probe.Channels, probe.Height, probe.Width), Is.EqualTo((1, 28, 28)));
        Assert.That(probe.Examined, Is.GreaterThan(1000), "the count from the header");
        using var folder = TestData.NewFolder();
        // A raw IDX header of [2, 5, 4, 3] (RGB), followed by its 120 bytes.
        var header = new byte[] { 0, 0, 8, 4, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 3 };
        File.WriteAllBytes(folder["rgb.idx"], [.. header, .. new byte[120]]);
        Assert.That(ImageProbe.Of(folder["rgb.idx"]), Is.EqualTo(new ImageProbe(3, 5, 4, 2)));
    }

    [Test]
    public void NothingReadableIsNamed()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllText(folder["x.png"], "no");
        Assert.That(() => ImageProbe.Of(folder.Path), Throws.TypeOf<ImageDataException>().With.Message.Contains("no readable image"));
        Assert.That(() => ImageProbe.Of(folder["missing"]), Throws.TypeOf<ImageDataException>().With.Message.Contains("no such file or folder"));
    }
}
