using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Cli;

/// <summary>
/// The Fashion-MNIST sample embedded in the tool (6,000 training and 1,000 test images; MIT, © Zalando SE),
/// and the full dataset where Debian's dataset-fashion-mnist installs it.
/// </summary>
internal static class SampleData
{
    public const string FullDatasetFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Fashion-MNIST's class names, by label index.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public static (ImageStore Train, ImageStore Test) LoadSample(ImageLoadOptions options) =>
        (Embedded("train", options), Embedded("t10k", options));

    public static (ImageStore Train, ImageStore Test) LoadFolder(string folder, ImageLoadOptions options)
    {
        ImageStore Part(string kind) => ImageStore.Load(
            Path.Combine(folder, $"{kind}-images-idx3-ubyte.gz"), Path.Combine(folder, $"{kind}-labels-idx1-ubyte.gz"), options);
        if (!Directory.Exists(folder))
            throw new ImageDataException(folder, "folder not found (install Debian's dataset-fashion-mnist, or pass --data-dir).");
        return (Part("train"), Part("t10k"));
    }

    private static ImageStore Embedded(string kind, ImageLoadOptions options)
    {
        using var images = Resource($"{kind}-images-idx3-ubyte.gz");
        using var labels = Resource($"{kind}-labels-idx1-ubyte.gz");
        return IdxReader.Read(images, $"{kind}-images-idx3-ubyte.gz", labels, $"{kind}-labels-idx1-ubyte.gz", options);
    }

    private static Stream Resource(string name) =>
        typeof(SampleData).Assembly.GetManifestResourceStream($"Sample/{name}")
        ?? throw new InvalidOperationException($"The embedded sample file {name} is missing from this build.");
}
