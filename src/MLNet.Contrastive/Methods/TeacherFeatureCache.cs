using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;
using System.Text.Json;
using MLNet.Contrastive.Runtime;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// What a teacher cache was written for; a cache is used only by a run whose key is the same, field for field.
/// </summary>
/// <param name="Teacher">The teacher as named (<see cref="DistillationOptions.Teacher"/>).</param>
/// <param name="TeacherSha256">SHA-256 of the teacher's file (the ONNX model, the checkpoint, the state dict).</param>
/// <param name="TeacherInput">The units an ONNX teacher's input takes.</param>
/// <param name="TeacherImageSize">The side views are resized to for the teacher.</param>
/// <param name="Target">Spatial or Global.</param>
/// <param name="Views">Fixed views per image (K).</param>
/// <param name="Seed">The run's seed: with the image's index and the view's number, it seeds the view.</param>
/// <param name="Recipe">The view recipe (the run's augmentation settings, as JSON).</param>
/// <param name="Images">Images in the training data.</param>
/// <param name="ImageShape">Channels, height and width of the training images.</param>
internal sealed record TeacherCacheKey(string Teacher, string TeacherSha256, string TeacherInput, int TeacherImageSize, string Target,
    int Views, int Seed, string Recipe, int Images, int[] ImageShape)
{
    /// <summary>The first field in which <paramref name="other"/> differs: (name, this value, other value); null when none does.</summary>
    public (string Field, string Cached, string Now)? FirstDifference(TeacherCacheKey other)
    {
        (string, object, object)[] fields =
        [
            (nameof(Teacher), Teacher, other.Teacher), (nameof(TeacherSha256), TeacherSha256, other.TeacherSha256),
            (nameof(TeacherInput), TeacherInput, other.TeacherInput), (nameof(TeacherImageSize), TeacherImageSize, other.TeacherImageSize),
            (nameof(Target), Target, other.Target), (nameof(Views), Views, other.Views), (nameof(Seed), Seed, other.Seed),
            (nameof(Recipe), Recipe, other.Recipe), (nameof(Images), Images, other.Images),
            (nameof(ImageShape), string.Join('×', ImageShape), string.Join('×', other.ImageShape)),
        ];
        foreach (var (name, cached, now) in fields)
            if (!Equals(cached, now)) return (name, cached.ToString()!, now.ToString()!);
        return null;
    }

    /// <summary>SHA-256 of a teacher's file, hex.</summary>
    public static string HashOf(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexString(SHA256.HashData(stream));
    }
}

/// <summary>
/// The teacher's features of K fixed views of every image, on disk (<see cref="DistillationOptions.TeacherCache"/>): filled
/// as steps need them and reused by later epochs and later runs with the same <see cref="TeacherCacheKey"/>. A cache
/// written for another key (teacher file, size, target, views, seed, recipe, data shape) is refused by name, and so is an
/// image whose pixels differ from those its features were computed on: a stale cache is never used silently.
/// Files: <c>cache.json</c> (the key and the feature length), <c>features.f32</c> ([images, K, length] float32),
/// <c>filled.u8</c> (one byte per image and view), <c>images.u64</c> (a hash of each image's pixels, 0 until seen).
/// </summary>
internal sealed class TeacherFeatureCache : IDisposable
{
    private const string ManifestFile = "cache.json", FeaturesFile = "features.f32", FilledFile = "filled.u8", ImagesFile = "images.u64";
    private readonly string folder;
    private readonly TeacherCacheKey key;
    private MemoryMappedFile? features, filled, images;
    private MemoryMappedViewAccessor? featureView, filledView, imageView;

    private sealed record Manifest(TeacherCacheKey Key, long FeatureLength);

    /// <summary>Opens the cache in <paramref name="folder"/>, or prepares a new one; a cache written for another key is refused.</summary>
    public TeacherFeatureCache(string folder, TeacherCacheKey key)
    {
        this.folder = folder;
        this.key = key;
        var manifest = Path.Combine(folder, ManifestFile);
        if (!File.Exists(manifest)) return;
        Manifest? existing;
        try { existing = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifest)); }
        catch (JsonException e) { throw new InvalidDataException($"{manifest}: not a teacher cache's manifest ({e.Message}); delete the folder or give another --teacher-cache.", e); }
        if (existing?.Key is null || existing.FeatureLength <= 0)
            throw new InvalidDataException($"{manifest}: not a teacher cache's manifest; delete the folder or give another --teacher-cache.");
        if (existing.Key.FirstDifference(key) is { } difference)
            throw new InvalidDataException($"{folder}: the teacher cache was written for {difference.Field} {difference.Cached}; this run has {difference.Now}. " +
                                           "Delete the folder or give another --teacher-cache.");
        Open(existing.FeatureLength, create: false);
    }

    /// <summary>Floats per view's features; 0 until the first features are stored.</summary>
    public long FeatureLength { get; private set; }

    /// <summary>Whether view <paramref name="view"/> of image <paramref name="image"/> is cached.</summary>
    public bool Has(int image, int view) => filledView is not null && filledView.ReadByte(Slot(image, view)) == 1;

    /// <summary>
    /// Checks that image <paramref name="image"/>'s pixels hash to what the cache saw (and records the hash the first time);
    /// an image that changed is refused by index.
    /// </summary>
    public void CheckImage(int image, ulong pixelHash)
    {
        if (imageView is null) return;
        var seen = imageView.ReadUInt64((long)image * sizeof(ulong));
        if (seen == 0) imageView.Write((long)image * sizeof(ulong), pixelHash);
        else if (seen != pixelHash)
            throw new InvalidDataException($"{folder}: training image {image} is not the image the teacher cache was written for (its pixels changed). " +
                                           "Delete the folder or give another --teacher-cache.");
    }

    /// <summary>The cached features of view <paramref name="view"/> of image <paramref name="image"/> into <paramref name="destination"/>.</summary>
    public void Read(int image, int view, float[] destination, int offset) =>
        featureView!.ReadArray(Offset(image, view), destination, offset, (int)FeatureLength);

    /// <summary>Stores the features of view <paramref name="view"/> of image <paramref name="image"/> (creating the files on first use).</summary>
    public void Write(int image, int view, float[] source, int offset, int length, ulong pixelHash)
    {
        if (featureView is null)
        {
            Open(length, create: true);
            AtomicFile.WriteAllText(Path.Combine(folder, ManifestFile), JsonSerializer.Serialize(new Manifest(key, length)));
        }
        else if (length != FeatureLength)
            throw new InvalidOperationException($"{folder}: the teacher gave {length} floats per view; the cache holds {FeatureLength}.");
        CheckImage(image, pixelHash);
        featureView!.WriteArray(Offset(image, view), source, offset, length);
        // Marked after the features: a process killed in between leaves the view to be computed again.
        filledView!.Write(Slot(image, view), (byte)1);
    }

    /// <summary>A hash of one image's values (never 0, which means "not seen").</summary>
    public static ulong PixelHash(ReadOnlySpan<float> values)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in System.Runtime.InteropServices.MemoryMarshal.AsBytes(values))
            hash = (hash ^ b) * 1099511628211UL;
        return hash | 1;
    }

    private long Slot(int image, int view)
    {
        if ((uint)image >= (uint)key.Images) throw new ArgumentOutOfRangeException(nameof(image), image, $"The cache holds {key.Images} images.");
        return (long)image * key.Views + view;
    }

    private long Offset(int image, int view) => Slot(image, view) * FeatureLength * sizeof(float);

    private void Open(long featureLength, bool create)
    {
        Directory.CreateDirectory(folder);
        FeatureLength = featureLength;
        var slots = (long)key.Images * key.Views;
        (features, featureView) = Map(FeaturesFile, slots * featureLength * sizeof(float), create);
        (filled, filledView) = Map(FilledFile, slots, create);
        (images, imageView) = Map(ImagesFile, (long)key.Images * sizeof(ulong), create);
    }

    private (MemoryMappedFile, MemoryMappedViewAccessor) Map(string name, long length, bool create)
    {
        var path = Path.Combine(folder, name);
        if (!create && (!File.Exists(path) || new FileInfo(path).Length != length))
            throw new InvalidDataException($"{path}: missing or not {length} bytes long as the teacher cache's manifest says; delete the folder or give another --teacher-cache.");
        var file = MemoryMappedFile.CreateFromFile(path, create ? FileMode.Create : FileMode.Open, null, length, MemoryMappedFileAccess.ReadWrite);
        return (file, file.CreateViewAccessor(0, length));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        featureView?.Dispose(); filledView?.Dispose(); imageView?.Dispose();
        features?.Dispose(); filled?.Dispose(); images?.Dispose();
    }
}
