using Google.Protobuf;
using Onnx;

namespace MLNet.Contrastive.Onnx;

/// <summary>Appends nodes and float initializers to an ONNX graph, naming intermediate values uniquely.</summary>
internal sealed class OnnxGraphBuilder
{
    private readonly GraphProto graph = new();
    private int counter;

    public OnnxGraphBuilder(string name) => graph.Name = name;

    public GraphProto Graph => graph;

    /// <summary>Adds a float32 constant and returns its name.</summary>
    public string Initializer(string name, float[] values, params long[] dims)
    {
        // Finite weights of a diverged run can still overflow here (a batch norm folded into its convolution).
        if (!values.All(float.IsFinite))
            throw new InvalidDataException(
                $"The {graph.Name}'s exported weights would hold NaN or infinite values (a {string.Join("×", dims)} constant): " +
                "its weights are too large for float32 once batch norms are folded in, as a diverged training leaves them. Nothing was written; use an earlier checkpoint or train at a lower learning rate.");
        var tensor = new TensorProto { Name = Unique(name), DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(dims);
        tensor.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Adds an int64 constant (a shape) and returns its name.</summary>
    public string Int64Initializer(string name, long[] values)
    {
        var tensor = new TensorProto { Name = Unique(name), DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Adds a node with one output and returns the output's name (or <paramref name="output"/> when given).</summary>
    public string Node(string opType, string[] inputs, string? output = null, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = Unique(opType) };
        node.Input.AddRange(inputs);
        node.Output.Add(output ?? node.Name + "_out");
        node.Attribute.AddRange(attributes);
        graph.Node.Add(node);
        return node.Output[0];
    }

    public static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static ValueInfoProto FloatTensor(string name, params (long? Size, string? Symbol)[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var (size, symbol) in dims)
            shape.Dim.Add(size is { } s ? new TensorShapeProto.Types.Dimension { DimValue = s } : new TensorShapeProto.Types.Dimension { DimParam = symbol });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private string Unique(string prefix) => $"{prefix}_{counter++}";
}
