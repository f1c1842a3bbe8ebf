using System.Buffers.Binary;
using System.Text;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Tests.Data;

public class ImageFolderReaderTests
{
    [Test]
    public void SymbolicLinksThatLoopOrRepeatAFolderAddNoImages()
    {
        using var folder = TestData.NewFolder();
        TestData.WriteImage(folder["cat/a.png"], 28, 28, seed: 1);
        TestData.WriteImage(folder["dog/b.png"], 28, 28, seed: 2);
        TestData.WriteImage(folder["dog/inner/c.png"], 28, 28, seed: 3);
        Directory.CreateSymbolicLink(folder["cat/loop"], folder.Path);          // back to the root
        Directory.CreateSymbolicLink(folder["cat/dogs"], folder["dog"]);        // another class
        Directory.CreateSymbolicLink(folder["dog/inner/up"], "..");             // relative, back to its class

        var store = ImageStore.Load(folder.Path);
        Assert.That(store.Sources.Select(Path.GetFileName), Is.EqualTo(new[] { "a.png", "b.png", "c.png" }));
        Assert.That(store.Labels, Is.EqualTo(new[] { 0, 1, 1 }));
    }

    [Test]
    public void ReadsLabelledFolderOfMixedSizesFormatsAndChannels()
    {
        using var folder = TestData.NewFolder();
        TestData.WriteImage(folder["cat/a.png"], 40, 30, seed: 1);
        TestData.WriteImage(folder["cat/b.jpg"], 20, 20, seed: 2, gray: true);
        TestData.WriteImage(folder["dog/c.png"], 28, 28, seed: 3, gray: true);
        WriteBmp(folder["dog/nested/d.bmp"], 9, 7);
        File.WriteAllText(folder["dog/readme.txt"], "not an image and not read");

        var store = ImageStore.Load(folder.Path, options: new ImageLoadOptions { Height = 28, Width = 28, Channels = 3 });
        Assert.That(store.Count, Is.EqualTo(4));
        Assert.That(store.LabelNames, Is.EqualTo(new[] { "cat", "dog" }));
        Assert.That(store.Labels, Is.EqualTo(new[] { 0, 0, 1, 1 }));
        Assert.That(store.Images(0, store.Count).Length, Is.EqualTo(4 * 3 * 28 * 28));
        Assert.That(Path.GetFileName(store.Sources[3]), Is.EqualTo("d.bmp"));
        // The BMP is a single colour (R=200, G=100, B=50): every resized pixel keeps it, in R, G, B planes.
        var bmp = store.Image(3);
        Assert.That(bmp[..784].ToArray().Distinct(), Is.EqualTo(new byte[] { 200 }));
        Assert.That(bmp[784..1568].ToArray().Distinct(), Is.EqualTo(new byte[] { 100 }));
        Assert.That(bmp[1568..].ToArray().Distinct(), Is.EqualTo(new byte[] { 50 }));
    }

    [Test]
    public void FlatFolderIsUnlabelled()
    {
        using var folder = TestData.NewFolder();
        TestData.WriteImage(folder["x.png"], 12, 12, seed: 1);
        TestData.WriteImage(folder["y.png"], 64, 48, seed: 2);
        var store = ImageStore.Load(folder.Path);
        Assert.That((store.Count, store.Channels, store.Labels, store.LabelNames), Is.EqualTo((2, 1, (int[]?)null, (IReadOnlyList<string>?)null)));
    }

    [Test]
    public void EmptyFolderIsAnEmptyDataset()
    {
        using var folder = TestData.NewFolder();
        File.WriteAllText(folder["notes.txt"], "x");
        Assert.That(() => ImageStore.Load(folder.Path),
            Throws.TypeOf<ImageDataException>().With.Message.Contains(folder.Path).And.Message.Contains("empty dataset"));
    }

    [Test]
    public void MissingPathIsNamed() =>
        Assert.That(() => ImageStore.Load("/no/such/folder"),
            Throws.TypeOf<ImageDataException>().With.Message.EqualTo("/no/such/folder: no such file or folder."));

    private static IEnumerable<TestCaseData> BadFiles()
    {
        yield return new TestCaseData("zero.png", (Action<string>)(p => File.WriteAllBytes(p, [])), "empty (0 bytes)").SetName("ZeroByteFile");
        yield return new TestCaseData("text.png", (Action<string>)(p => File.WriteAllText(p, "hello, not a picture")), "not a PNG, JPEG or BMP image").SetName("NonImageWithImageExtension");
        yield return new TestCaseData("cut.png", (Action<string>)(p => Truncate(p, ".png")), "truncated").SetName("TruncatedPng");
        yield return new TestCaseData("cut.jpg", (Action<string>)(p => Truncate(p, ".jpg")), "truncated").SetName("TruncatedJpeg");
        yield return new TestCaseData("bomb.png", (Action<string>)(p => File.WriteAllBytes(p, PngHeaderOnly(30000, 30000))), "30000×30000 = 900,000,000 pixels, above the limit").SetName("DecompressionBomb");
    }

    [TestCaseSource(nameof(BadFiles))]
    public void BadImageIsNamedWithItsProblem(string name, Action<string> write, string problem)
    {
        using var folder = TestData.NewFolder();
        TestData.WriteImage(folder["good.png"], 28, 28, seed: 1);
        write(folder[name]);
        Assert.That(() => ImageStore.Load(folder.Path),
            Throws.TypeOf<ImageDataException>().With.Message.StartsWith(folder[name] + ": ").And.Message.Contains(problem));
    }

    [Test]
    public void SkipBadImagesCountsWhatItSkips()
    {
        using var folder = TestData.NewFolder();
        foreach (var (name, write, _) in BadFiles().Select(c => ((string)c.Arguments[0]!, (Action<string>)c.Arguments[1]!, 0)))
            write(folder[name]);
        TestData.WriteImage(folder["good1.png"], 28, 28, seed: 1);
        TestData.WriteImage(folder["good2.jpg"], 50, 50, seed: 2);
        var store = ImageStore.Load(folder.Path, options: new ImageLoadOptions { SkipBadImages = true });
        Assert.That(store.Count, Is.EqualTo(2));
        Assert.That(store.Skipped, Has.Count.EqualTo(5));
        Assert.That(store.Skipped, Has.Some.Contains("bomb.png"));
    }

    [Test]
    public void PixelLimitIsConfigurable()
    {
        using var folder = TestData.NewFolder();
        TestData.WriteImage(folder["big.png"], 100, 100, seed: 1);
        Assert.That(() => ImageStore.Load(folder.Path, options: new ImageLoadOptions { MaxPixels = 9_999 }),
            Throws.TypeOf<ImageDataException>().With.Message.Contains("100×100 = 10,000 pixels"));
        Assert.That(ImageStore.Load(folder.Path, options: new ImageLoadOptions { MaxPixels = 10_000 }).Count, Is.EqualTo(1));
    }

    private static void Truncate(string path, string extension)
    {
        var whole = path + ".whole" + extension;
        TestData.WriteImage(whole, 64, 64, seed: 9);
        var bytes = File.ReadAllBytes(whole);
        File.Delete(whole);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
    }

    /// <summary>A valid PNG signature and IHDR declaring width × height, one tiny IDAT, IEND: kilobytes that claim gigabytes.</summary>
    private static byte[] PngHeaderOnly(int width, int height)
    {
        var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth; colour type 0 (gray), deflate, no filter, no interlace
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]);
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, data.Length);
        png.Write(header);
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        png.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(header, Crc32(typed));
        png.Write(header);
    }

    private static uint Crc32(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>A 24-bit BMP of one colour (R=200, G=100, B=50); Skia decodes BMP but does not encode it.</summary>
    private static void WriteBmp(string path, int width, int height)
    {
        var rowSize = (width * 3 + 3) / 4 * 4;
        var bmp = new byte[54 + rowSize * height];
        "BM"u8.CopyTo(bmp);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(2), bmp.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(28), 24);
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var at = 54 + y * rowSize + x * 3;
                (bmp[at], bmp[at + 1], bmp[at + 2]) = ((byte)50, (byte)100, (byte)200);
            }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bmp);
    }
}
