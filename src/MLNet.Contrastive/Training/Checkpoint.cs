using System.Security.Cryptography;
using System.Text.Json;
using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>What a checkpoint records besides the weights.</summary>
internal sealed class CheckpointInfo
{
    /// <summary>The file format's version.</summary>
    public int FormatVersion { get; set; } = Checkpoint.FormatVersion;
    /// <summary>The run's settings; <see cref="PretrainOptions.Method"/> holds the method's settings as resolved for the data.</summary>
    public PretrainOptions Options { get; set; } = new();
    /// <summary>The encoder's shape.</summary>
    public EncoderOptions Encoder { get; set; } = new();
    /// <summary>Image channels, height and width the run trained on.</summary>
    public int Channels { get; set; }
    /// <summary>Image height.</summary>
    public int Height { get; set; }
    /// <summary>Image width.</summary>
    public int Width { get; set; }
    /// <summary>Completed epochs.</summary>
    public int Epoch { get; set; }
    /// <summary>Steps done in the epoch after <see cref="Epoch"/> (non-zero when a time budget stopped mid-epoch).</summary>
    public int StepInEpoch { get; set; }
    /// <summary>Steps done in all.</summary>
    public int GlobalStep { get; set; }
    /// <summary>Training time spent so far (monitors excluded).</summary>
    public double ElapsedSeconds { get; set; }
    /// <summary>The run's history so far.</summary>
    public TrainingHistory History { get; set; } = new();
    /// <summary>Where the starting weights came from (<see cref="PretrainOptions.Initialization"/>); null for a random start.</summary>
    public string? InitializedFrom { get; set; }
    /// <summary>Processes that trained the last steps (<see cref="PretrainOptions.DataParallel"/>); 1 in checkpoints from before it.</summary>
    public int Ranks { get; set; } = 1;
}

/// <summary>
/// One file with the method's weights (encoder and heads), the optimizer state, the augmentation generator's
/// state and <see cref="CheckpointInfo"/>; written to a temporary file and renamed, so a crash never leaves a
/// half-written checkpoint.
/// </summary>
internal static class Checkpoint
{
    // 2: each method's own settings, stored with the method's name. 3: a SHA-256 of the contents before the end marker.
    // 4: the run settings (epochs, minutes, batch, learning rate, weight decay, seed, threads, device) as one group, "Run".
    internal const int FormatVersion = 4;
    private const string Magic = "MLNet.Contrastive checkpoint";
    // Written last: a file that lacks it was cut short.
    private static readonly byte[] EndMarker = "MLNC-END"u8.ToArray();
    private const int DigestLength = 32;
    private static JsonSerializerOptions Json => PretrainingMethods.Json;

    internal static void Save(string path, CheckpointInfo info, PretrainingMethod method, TrainingOptimizer optimizer, Generator generator) =>
        AtomicFile.Write(path, stream =>
        {
            // A bit flipped on disk or in transfer would otherwise load as silently different weights.
            using var hashed = new DigestingStream(stream);
            using (var writer = new BinaryWriter(hashed, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(FormatVersion);
                writer.Write(JsonSerializer.Serialize(info, Json));
                method.save(writer);
                optimizer.Save(writer);
                using var state = generator.get_state();
                var bytes = state.data<byte>().ToArray();
                writer.Write(bytes.Length);
                writer.Write(bytes);
            }
            stream.Write(hashed.Digest());
            stream.Write(EndMarker);
        });

    /// <summary>Reads only the <see cref="CheckpointInfo"/>.</summary>
    public static CheckpointInfo ReadInfo(string path)
    {
        using var reader = Open(path);
        return ReadHeader(reader, path);
    }

    /// <summary>The pretrained encoder, in eval mode, on the CPU.</summary>
    public static ImageEncoder LoadEncoder(string path)
    {
        var (info, method) = LoadMethod(path);
        method.eval();
        return method.Encoder;
    }

    /// <summary>Rebuilds the method and loads its weights; the optimizer and generator states stay in the file.</summary>
    public static (CheckpointInfo Info, PretrainingMethod Method) LoadMethod(string path)
    {
        using var reader = Open(path);
        var info = ReadHeader(reader, path);
        var views = info.Options.Augmentation ?? AugmentationOptions.ForImageSize(info.Height, info.Width);
        var method = info.Options.Method.CreateMethod(ImageEncoder.Create(info.Encoder), new MethodSetup(views, 0, info.Options.Run.Seed));
        Guard(path, () => method.load(reader));
        FiniteWeights.Check(method, path);
        return (info, method);
    }

    /// <summary>Restores the optimizer and generator state from the checkpoint written for <paramref name="method"/>.</summary>
    internal static void LoadTrainingState(string path, PretrainingMethod method, TrainingOptimizer optimizer, Generator generator)
    {
        using var reader = Open(path);
        ReadHeader(reader, path);
        Guard(path, () =>
        {
            method.load(reader);
            optimizer.Load(reader);
            // libtorch aborts the process on a generator state of the wrong size: check the length before reading it.
            using var current = generator.get_state();
            var length = reader.ReadInt32();
            if (length != current.shape[0] || reader.BaseStream.Length - reader.BaseStream.Position < length + EndMarker.Length)
                throw new InvalidDataException($"the augmentation generator's state is {length} bytes; this build's is {current.shape[0]}");
            using var state = tensor(reader.ReadBytes(length), dtype: ScalarType.Byte);
            generator.set_state(state);
        });
    }

    private static BinaryReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint not found.", path);
        return new BinaryReader(File.OpenRead(path));
    }

    /// <summary>A header of format 2 or 3, whose run settings stood among the others, with them moved into the "Run" group.</summary>
    internal static string GroupRunSettings(string header)
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(header)!.AsObject();
        if (root["Options"] is System.Text.Json.Nodes.JsonObject options)
        {
            var run = new System.Text.Json.Nodes.JsonObject();
            foreach (var name in RunSettingNames)
                if (options.Remove(name, out var value)) run[name] = value;
            options["Run"] = run;
        }
        return root.ToJsonString();
    }

    private static readonly string[] RunSettingNames =
        [nameof(RunOptions.Epochs), nameof(RunOptions.Minutes), nameof(RunOptions.BatchSize), nameof(RunOptions.LearningRate),
         nameof(RunOptions.WeightDecay), nameof(RunOptions.Seed), nameof(RunOptions.Threads), nameof(RunOptions.Device)];

    private static CheckpointInfo ReadHeader(BinaryReader reader, string path)
    {
        CheckpointInfo? info = null;
        Guard(path, () =>
        {
            var expected = MagicPrefix();
            var actual = reader.ReadBytes(expected.Length);
            if (!actual.AsSpan().SequenceEqual(expected)) throw new InvalidDataException("not an MLNet.Contrastive checkpoint");
            if (!EndsWithMarker(reader.BaseStream)) throw new EndOfStreamException();
            var version = reader.ReadInt32();
            if (version is not (>= 2 and <= FormatVersion))
                throw new InvalidDataException($"checkpoint format {version} is not supported (expected 2 to {FormatVersion}); pretrain again with this version");
            if (version >= 3) CheckDigest(reader.BaseStream);
            var header = reader.ReadString();
            info = JsonSerializer.Deserialize<CheckpointInfo>(version < 4 ? GroupRunSettings(header) : header, Json);
        });
        return info ?? throw new InvalidDataException($"{path}: the checkpoint's header is empty.");
    }

    /// <summary>The bytes <see cref="BinaryWriter.Write(string)"/> writes for <see cref="Magic"/>.</summary>
    private static byte[] MagicPrefix()
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer)) writer.Write(Magic);
        return buffer.ToArray();
    }

    private static bool EndsWithMarker(Stream stream)
    {
        var position = stream.Position;
        if (stream.Length < position + EndMarker.Length) return false;
        var end = new byte[EndMarker.Length];
        stream.Seek(-EndMarker.Length, SeekOrigin.End);
        stream.ReadExactly(end);
        stream.Position = position;
        return end.AsSpan().SequenceEqual(EndMarker);
    }

    /// <summary>Compares the SHA-256 of everything before the digest with the digest; the stream's position is kept.</summary>
    private static void CheckDigest(Stream stream)
    {
        var position = stream.Position;
        var covered = stream.Length - EndMarker.Length - DigestLength;
        if (covered < position) throw new EndOfStreamException();
        stream.Position = 0;
        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        for (var left = covered; left > 0;)
        {
            var read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0) throw new EndOfStreamException();
            digest.AppendData(buffer, 0, read);
            left -= read;
        }
        var stored = new byte[DigestLength];
        stream.ReadExactly(stored);
        if (!digest.GetHashAndReset().AsSpan().SequenceEqual(stored))
            throw new InvalidDataException("the file is damaged (its contents do not match the SHA-256 written with them)");
        stream.Position = position;
    }

    private static void Guard(string path, Action read)
    {
        try { read(); }
        catch (Exception e) when (e is EndOfStreamException or IOException or JsonException or ArgumentException
                                      or InvalidDataException or FormatException or OverflowException or System.Runtime.InteropServices.ExternalException)
        {
            var reason = e is EndOfStreamException ? "the file is truncated" : e.Message;
            throw new InvalidDataException($"{path}: cannot read the checkpoint: {reason}.", e);
        }
    }
}

/// <summary>Passes writes through to a stream and keeps the SHA-256 of every byte written.</summary>
internal sealed class DigestingStream(Stream inner) : Stream
{
    private readonly IncrementalHash digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public byte[] Digest() => digest.GetHashAndReset();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        digest.AppendData(buffer);
        inner.Write(buffer);
    }

    public override void Flush() => inner.Flush();
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) digest.Dispose();
        base.Dispose(disposing);
    }
}
