using MLNet.Contrastive.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using B = MLNet.Contrastive.Onnx.OnnxGraphBuilder;

namespace MLNet.Contrastive.Onnx;

/// <summary>
/// The ONNX nodes of a <see cref="VisionTransformer"/> from normalised pixels to its class token (opset 17: LayerNormalization
/// and Erf are standard operators there). Attention is written out — per-head Q, K and V projections (the qkv rows split
/// at export, Q pre-scaled by 1/√d), MatMul, Softmax, MatMul — so that any ONNX runtime runs it.
/// </summary>
internal static class VisionTransformerGraph
{
    /// <summary>[N, C, H, W] normalised pixels → [N, D] class token, at the exported <paramref name="height"/> × <paramref name="width"/>.</summary>
    public static string ClassToken(B builder, VisionTransformer vit, string input, int height, int width)
    {
        var x = Tokens(builder, vit, input, height, width);
        if (vit.Options.VitPooling == VitPooling.MeanPatchTokens)
        {
            // Tokens 1 … T − 1 of [N, T, D], averaged: [N, D].
            var patches = builder.Node("Slice", [x, builder.Int64Initializer("one", [1]), builder.Int64Initializer("end", [long.MaxValue]), builder.Int64Initializer("axis1", [1])]);
            return builder.Node("ReduceMean", [patches], null, B.Ints("axes", [1]), B.Int("keepdims", 0));
        }
        // Token 0 of [N, T, D] → [N, 1, D] → [N, D].
        var first = builder.Node("Slice", [x, builder.Int64Initializer("zero", [0]), builder.Int64Initializer("one", [1]), builder.Int64Initializer("axis1", [1])]);
        return builder.Node("Flatten", [first], null, B.Int("axis", 1));
    }

    /// <summary>
    /// [N, C, H, W] normalised pixels → the final norm's tokens [N, 1 + L', D], class token first: every patch, or only
    /// those of <paramref name="visible"/> in that order (<see cref="VisionTransformer.EncodeVisible"/> with the same
    /// indices for every image).
    /// </summary>
    public static string Tokens(B builder, VisionTransformer vit, string input, int height, int width, IReadOnlyList<int>? visible = null)
    {
        var options = vit.Options;
        var (patch, dimension) = (options.PatchSize, (long)options.HiddenDimension);
        if (height % patch != 0 || width % patch != 0)
            throw new NotSupportedException($"A {height}×{width} input does not split into the ViT's {patch}×{patch} patches; export at sides that are multiples of {patch}.");
        var conv = vit.PatchEmbedding;
        var x = builder.Node("Conv", [input, EncoderOnnxExporter.Weights(builder, conv.weight!), EncoderOnnxExporter.Weights(builder, conv.bias!)], null,
            B.Ints("kernel_shape", [patch, patch]), B.Ints("strides", [patch, patch]));
        // [N, D, h, w] → [N, h·w, D].
        x = builder.Node("Transpose", [builder.Node("Reshape", [x, builder.Int64Initializer("patch_shape", [0, dimension, -1])])], null, B.Ints("perm", [0, 2, 1]));

        using var positions = vit.Positions(height / patch, width / patch).detach();
        using var patchPositions = positions.narrow(1, 1, positions.shape[1] - 1);
        using var classPosition = positions.narrow(1, 0, 1);
        using var classToken = vit.ClassToken.detach() + classPosition;
        x = builder.Node("Add", [x, EncoderOnnxExporter.Weights(builder, patchPositions)]);
        if (visible is not null)
            x = builder.Node("Gather", [x, builder.Int64Initializer("visible", [.. visible.Select(v => (long)v)])], null, B.Int("axis", 1));

        // The class token (with its position) expanded to [N, 1, D]: N from the tokens' shape.
        x = builder.Node("Concat", [Repeat(builder, EncoderOnnxExporter.Weights(builder, classToken), x, 1, dimension), x], null, B.Int("axis", 1));
        foreach (var block in vit.Blocks) x = Block(builder, block, x, dimension);
        return Norm(builder, vit.Norm, x);
    }

    /// <summary>A [1, T, D] constant expanded to [N, T, D], N read from <paramref name="like"/>'s first dimension.</summary>
    internal static string Repeat(B builder, string constant, string like, long tokens, long dimension)
    {
        var batch = builder.Node("Slice", [builder.Node("Shape", [like]), builder.Int64Initializer("zero", [0]), builder.Int64Initializer("one", [1])]);
        var shape = builder.Node("Concat", [batch, builder.Int64Initializer("rest", [tokens, dimension])], null, B.Int("axis", 0));
        return builder.Node("Expand", [constant, shape]);
    }

    /// <summary>A pre-norm transformer block on [N, T, D]: x + attention(norm₁(x)), then + MLP(norm₂(x)).</summary>
    internal static string Block(B builder, VitBlock block, string x, long dimension)
    {
        x = builder.Node("Add", [x, Attention(builder, block.Attention, Norm(builder, block.Norm1, x), dimension)]);
        var hidden = Linear(builder, block.Mlp.Fc1, Norm(builder, block.Norm2, x));
        return builder.Node("Add", [x, Linear(builder, block.Mlp.Fc2, Gelu(builder, hidden))]);
    }

    internal static string Norm(B builder, LayerNorm norm, string input) =>
        builder.Node("LayerNormalization", [input, EncoderOnnxExporter.Weights(builder, norm.weight!), EncoderOnnxExporter.Weights(builder, norm.bias!)], null,
            B.Int("axis", -1), new global::Onnx.AttributeProto { Name = "epsilon", Type = global::Onnx.AttributeProto.Types.AttributeType.Float, F = (float)VisionTransformer.NormEpsilon });

    /// <summary>x·Wᵀ + b on [N, T, in] → [N, T, out] (MatMul broadcasts over N; Gemm takes only matrices).</summary>
    internal static string Linear(B builder, Linear linear, string input) => Linear(builder, linear.weight!, linear.bias!, input);

    private static string Linear(B builder, Tensor weight, Tensor bias, string input)
    {
        using var transposed = weight.detach().t();
        return builder.Node("Add", [builder.Node("MatMul", [input, EncoderOnnxExporter.Weights(builder, transposed)]), EncoderOnnxExporter.Weights(builder, bias)]);
    }

    /// <summary>Exact GELU, x · ½(1 + erf(x / √2)).</summary>
    private static string Gelu(B builder, string x)
    {
        var erf = builder.Node("Erf", [builder.Node("Mul", [x, builder.Initializer("inv_sqrt2", [(float)(1 / Math.Sqrt(2))], 1)])]);
        var gate = builder.Node("Mul", [builder.Node("Add", [erf, builder.Initializer("one_f", [1f], 1)]), builder.Initializer("half", [0.5f], 1)]);
        return builder.Node("Mul", [x, gate]);
    }

    /// <summary>softmax(Q·Kᵀ / √d)·V per head, then the output projection: [N, T, D] → [N, T, D].</summary>
    private static string Attention(B builder, VitAttention attention, string input, long dimension)
    {
        var heads = attention.Heads;
        var headWidth = dimension / heads;
        var scale = (float)(1 / Math.Sqrt(headWidth));
        using var scope = NewDisposeScope();
        var weight = attention.Qkv.weight!.detach();
        var bias = attention.Qkv.bias!.detach();
        using var scaleScalar = scale.ToScalar();
        string Project(int part, long[] perm, bool scaled)
        {
            var (w, b) = (weight.narrow(0, part * dimension, dimension), bias.narrow(0, part * dimension, dimension));
            if (scaled) (w, b) = (w.mul(scaleScalar), b.mul(scaleScalar));
            var projected = Linear(builder, w, b, input);
            var split = builder.Node("Reshape", [projected, builder.Int64Initializer("heads_shape", [0, 0, heads, headWidth])]);
            return builder.Node("Transpose", [split], null, B.Ints("perm", perm));
        }
        var q = Project(0, [0, 2, 1, 3], scaled: true);   // [N, heads, T, d]
        var k = Project(1, [0, 2, 3, 1], scaled: false);  // [N, heads, d, T]
        var v = Project(2, [0, 2, 1, 3], scaled: false);  // [N, heads, T, d]
        var weights = builder.Node("Softmax", [builder.Node("MatMul", [q, k])], null, B.Int("axis", -1));
        var attended = builder.Node("Transpose", [builder.Node("MatMul", [weights, v])], null, B.Ints("perm", [0, 2, 1, 3]));
        var merged = builder.Node("Reshape", [attended, builder.Int64Initializer("merge_shape", [0, 0, dimension])]);
        return Linear(builder, attention.Proj, merged);
    }
}
