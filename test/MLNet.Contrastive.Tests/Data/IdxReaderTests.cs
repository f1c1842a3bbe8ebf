using System.IO.Compression;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Tests.Data;

public class IdxReaderTests
{
    private static byte[] Inflate(string path)
    {
        using var gzip = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var copy = new MemoryStream();
        gzip.CopyTo(copy);
        return copy.ToArray();
    }

    [Test]
    public void ReadsTheSampleWithLabels()
    {
        var store = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels);
        Assert.That(store.Count, Is.EqualTo(6000));
        Assert.That((store.Channels, store.Height, store.Width), Is.EqualTo((1, 28, 28)));
        Assert.That(store.LabelNames, Is.EqualTo(Enumerable.Range(0, 10).Select(i => i.ToString())));
        var raw = Inflate(TestData.TrainLabels);
        Assert.That(store.Labels, Is.EqualTo(raw.Skip(8).Select(b => (int)b)));
        Assert.That(store.Sources[5], Is.EqualTo("train-images-idx3-ubyte.gz#5"));
    }

    [Test]
    public void PixelsAreTheFileBytesAtTheSameSize()
    {
        // At 28×28 the ML.NET chain (resize → grayscale → extract) must give back the stored gray levels.
        var store = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels);
        var raw = Inflate(TestData.TrainImages);
        var pixels = store.Images(0, 200).ToArray();
        var largest = Enumerable.Range(0, 28 * 28 * 200).Max(i => Math.Abs(pixels[i] - raw[16 + i]));
        Assert.That(largest, Is.LessThanOrEqualTo(1), "gray levels differ by more than rounding");
    }

    [Test]
    public void ResizesAndConvertsToRgbOnRequest()
    {
        var store = ImageStore.Load(TestData.TrainImages, null, new ImageLoadOptions { Height = 32, Width = 32, Channels = 3 });
        Assert.That((store.Channels, store.Height, store.Width, store.Labels), Is.EqualTo((3, 32, 32, (int[]?)null)));
        var image = store.Image(0);
        Assert.That(image[..1024].SequenceEqual(image[1024..2048]), Is.True, "gray images give equal R and G planes");
    }

    [Test]
    public void WrongMagicNumberIsNamed()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllBytes(folder["bad.idx"], [0x12, 0x34, 0x08, 0x03, 0, 0, 0, 0]);
        Assert.That(() => ImageStore.Load(folder["bad.idx"]),
            Throws.TypeOf<ImageDataException>().With.Message.Contains("bad.idx").And.Message.Contains("wrong magic number 0x12340803"));
    }

    [Test]
    public void SizeThatDoesNotMatchTheHeaderIsNamed()
    {
        using var folder = TestData.NewFolder();
        var file = new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28 }.Concat(new byte[1000]).ToArray();
        File.WriteAllBytes(folder["short.idx"], file);
        Assert.That(() => ImageStore.Load(folder["short.idx"]),
            Throws.TypeOf<ImageDataException>().With.Message.Contains("short.idx").And.Message.Contains("2×28×28 = 1,568 bytes").And.Message.Contains("truncated"));
    }

    [Test]
    public void HeaderWhoseSizeOverflowsIsNamed()
    {
        // 2^30 × 2^17 × 2^17 bytes wraps around to 0 in 64 bits, which is what a bare header holds.
        using var folder = TestData.NewFolder();
        File.WriteAllBytes(folder["huge.idx"], [0, 0, 8, 3, 0x40, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0]);
        Assert.That(() => ImageStore.Load(folder["huge.idx"]), Throws.TypeOf<ImageDataException>()
            .With.Message.Contains("huge.idx").And.Message.Contains("1073741824×131072… bytes of data, more than one file can hold"));
    }

    [Test]
    public void GzipThatInflatesBeyondItsHeaderIsRefusedWithoutInflatingIt()
    {
        // A 2×28×28 header followed by 1 GiB of zeros compresses to about a megabyte.
        using var folder = TestData.NewFolder();
        using (var gzip = new GZipStream(File.Create(folder["bomb.gz"]), CompressionLevel.Fastest))
        {
            gzip.Write([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]);
            var zeros = new byte[1 << 20];
            for (var i = 0; i < 1024; i++) gzip.Write(zeros);
        }
        var before = GC.GetTotalAllocatedBytes();
        Assert.That(() => ImageStore.Load(folder["bomb.gz"]), Throws.TypeOf<ImageDataException>()
            .With.Message.Contains("2×28×28 = 1,568 bytes of data but the file holds more than 1,568 (extra bytes after the data)"));
        Assert.That(GC.GetTotalAllocatedBytes() - before, Is.LessThan(64L << 20), "only the compressed file and the declared size are held");
    }

    [Test]
    public void ImageSizeBeyondTheLimitIsRefusedBeforeDecoding() =>
        Assert.That(() => ImageStore.Load(TestData.TrainImages, null, new ImageLoadOptions { Height = 10000, Width = 10000 }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("The image size 10000×10000 is above 1024×1024"));

    [Test]
    public void LabelCountThatDiffersFromImagesIsNamed()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllBytes(folder["labels.idx"], [0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]);
        Assert.That(() => ImageStore.Load(TestData.TrainImages, folder["labels.idx"]),
            Throws.TypeOf<ImageDataException>().With.Message.Contains("labels.idx").And.Message.Contains("3 labels").And.Message.Contains("6,000 images"));
    }

    [Test]
    public void TruncatedGzipIsNamed()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllBytes(folder["cut.gz"], File.ReadAllBytes(TestData.TrainImages)[..5000]);
        Assert.That(() => ImageStore.Load(folder["cut.gz"]), Throws.TypeOf<ImageDataException>().With.Message.Contains("cut.gz"));
    }

    [Test]
    public void EmptyAndMissingFilesAreNamed()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllBytes(folder["empty.idx"], []);
        Assert.That(() => ImageStore.Load(folder["empty.idx"]), Throws.TypeOf<ImageDataException>().With.Message.Contains("empty (0 bytes)"));
        Assert.That(() => ImageStore.Load(folder["nope.idx"]), Throws.TypeOf<ImageDataException>().With.Message.Contains("nope.idx").And.Message.Contains("no such file"));
        File.WriteAllBytes(folder["none.idx"], [0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28]);
        Assert.That(() => ImageStore.Load(folder["none.idx"]), Throws.TypeOf<ImageDataException>().With.Message.Contains("no images"));
    }
}
