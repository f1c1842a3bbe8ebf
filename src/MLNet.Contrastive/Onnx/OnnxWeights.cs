using System.Runtime.InteropServices;
using Onnx;

namespace MLNet.Contrastive.Onnx;

/// <summary>Reads an ONNX file's float32 constants, so that a model with NaN or infinite weights is refused by name before it scores.</summary>
internal static class OnnxWeights
{
    /// <summary>
    /// Throws <see cref="InvalidDataException"/> naming <paramref name="path"/> and the first float32 initializer that
    /// holds a NaN or an infinity; does nothing when the file is not an ONNX model (its loader names that).
    /// </summary>
    public static void CheckFinite(string path)
    {
        ModelProto model;
        try
        {
            using var stream = File.OpenRead(path);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return;
        }
        if (model.Graph is null) return;
        foreach (var initializer in model.Graph.Initializer)
        {
            if (initializer.DataType != (int)TensorProto.Types.DataType.Float) continue;
            if (!AllFinite(Floats(initializer)))
                throw new InvalidDataException(
                    $"{path}: the ONNX model's weight '{initializer.Name}' holds NaN or infinite values (the training that produced it diverged); it would score every image as NaN.");
        }
    }

    /// <summary>A float32 initializer's values, stored as raw bytes or as float_data.</summary>
    internal static ReadOnlySpan<float> Floats(TensorProto initializer) =>
        initializer.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(initializer.RawData.Span) : initializer.FloatData.ToArray();

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (var value in values)
            if (!float.IsFinite(value)) return false;
        return true;
    }
}
