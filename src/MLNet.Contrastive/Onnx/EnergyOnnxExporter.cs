using Google.Protobuf;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Runtime;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using B = MLNet.Contrastive.Onnx.OnnxGraphBuilder;

namespace MLNet.Contrastive.Onnx;

/// <summary>
/// Exports a calibrated <see cref="ReconstructionEnergy"/> to ONNX (opset 17): input [N, C, H, W] pixels 0–255 (as the
/// encoders'), output [N, 1], each image's energy. The graph holds the MAE's encoder and decoder once per cover mask
/// (the visible patches and the decoder's restoring order are constants: the same masks for every image), the targets
/// (patches of the pixels scaled to [0, 1], standardised per patch when the MAE was trained so), the per-position error
/// averaged over the masks that hide it, and the calibration's z-scores and two standardised terms.
/// </summary>
public static class EnergyOnnxExporter
{
    /// <summary>Writes the ONNX file (through a temporary file and a rename); <paramref name="options"/>' OutputName defaults to "Energy" here.</summary>
    public static void Export(ReconstructionEnergy energy, EnergyCalibration calibration, string path, EncoderOnnxOptions? options = null) =>
        AtomicFile.WriteAllBytes(path, ToModel(energy, calibration, options ?? DefaultOptions(energy)).ToByteArray());

    /// <summary>Export settings for <paramref name="energy"/>: its MAE's image size, output "Energy".</summary>
    public static EncoderOnnxOptions DefaultOptions(ReconstructionEnergy energy) => new()
    {
        OutputName = "Energy", Height = energy.Mae.Encoder.Options.ImageSize, Width = energy.Mae.Encoder.Options.ImageSize,
    };

    /// <summary>The ONNX model of the energy under <paramref name="calibration"/> (the MAE in eval mode).</summary>
    public static ModelProto ToModel(ReconstructionEnergy energy, EnergyCalibration calibration, EncoderOnnxOptions options)
    {
        var (mae, vit) = (energy.Mae, energy.Mae.Vit);
        var encoderOptions = vit.Options;
        if (options.Height != encoderOptions.ImageSize || options.Width != encoderOptions.ImageSize)
            throw new ArgumentException($"The energy is exported at the MAE's own size, {encoderOptions.ImageSize}×{encoderOptions.ImageSize}; got {options.Height}×{options.Width}.", nameof(options));
        energy.Check(calibration);
        using var pause = CollectionPause.Begin();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        EncoderOnnxExporter.CheckFinite(mae, "MAE");
        var builder = new B("energy");
        var (channels, size, patch) = (encoderOptions.InputChannels, (long)encoderOptions.ImageSize, (long)encoderOptions.PatchSize);
        var (grid, patches) = (size / patch, (long)energy.Patches);
        var patchPixels = patch * patch * channels;
        builder.Graph.Input.Add(B.FloatTensor(options.InputName, (null, "N"), (channels, null), (size, null), (size, null)));

        // The encoder's input: (x / 255 − mean) / std per channel; the targets: x / 255 as patches [N, L, P²·C] (MaeLoss.Patchify).
        var std = vit.NormalizationStd.cpu().data<float>().ToArray();
        var mean = vit.NormalizationMean.cpu().data<float>().ToArray();
        var normalised = builder.Node("Add", [builder.Node("Mul", [options.InputName, builder.Initializer("scale", [.. std.Select(s => 1 / (255f * s))], 1, channels, 1, 1)]),
            builder.Initializer("shift", [.. mean.Zip(std, (m, s) => -m / s)], 1, channels, 1, 1)]);
        var unit = builder.Node("Mul", [options.InputName, builder.Initializer("inv255", [1 / 255f], 1)]);
        var target = builder.Node("Reshape", [unit, builder.Int64Initializer("grid_shape", [0, channels, grid, patch, grid, patch])]);
        target = builder.Node("Transpose", [target], null, B.Ints("perm", [0, 2, 4, 3, 5, 1]));
        target = builder.Node("Reshape", [target, builder.Int64Initializer("patch_rows", [0, patches, patchPixels])]);
        if (mae.NormalizePixelTargets)
        {
            // (x − μ) / √(σ² + 10⁻⁶) per patch, σ² unbiased (MaeLoss.NormalizePatches).
            var centred = builder.Node("Sub", [target, builder.Node("ReduceMean", [target], null, B.Ints("axes", [-1]), B.Int("keepdims", 1))]);
            var variance = builder.Node("Mul", [builder.Node("ReduceMean", [builder.Node("Mul", [centred, centred])], null, B.Ints("axes", [-1]), B.Int("keepdims", 1)),
                builder.Initializer("unbiased", [patchPixels / (patchPixels - 1f)], 1)]);
            target = builder.Node("Div", [centred, builder.Node("Sqrt", [builder.Node("Add", [variance, builder.Initializer("eps", [1e-6f], 1)])])]);
        }

        // Each mask's per-patch squared error [N, L], weighted by 1 / (masks hiding the patch) where hidden, 0 where seen.
        var hiddenCounts = energy.HiddenCounts;
        string? error = null;
        var decoder = mae.Decoder;
        var width = decoder.Embed.out_features;
        foreach (var visible in energy.Masks)
        {
            var tokens = VisionTransformerGraph.Tokens(builder, vit, normalised, (int)size, (int)size, visible);
            var x = VisionTransformerGraph.Linear(builder, decoder.Embed, tokens);
            var seen = builder.Node("Slice", [x, builder.Int64Initializer("one", [1]), builder.Int64Initializer("end", [long.MaxValue]), builder.Int64Initializer("axis1", [1])]);
            var maskTokens = VisionTransformerGraph.Repeat(builder, EncoderOnnxExporter.Weights(builder, decoder.MaskToken), x, patches - visible.Length, width);
            // [visible…, hidden…] back in patch order: the same permutation as PatchMasking.Fixed's restore.
            var order = visible.Concat(Enumerable.Range(0, (int)patches).Where(p => !visible.Contains(p))).ToArray();
            var restore = new long[patches];
            for (var i = 0; i < order.Length; i++) restore[order[i]] = i;
            var ordered = builder.Node("Gather", [builder.Node("Concat", [seen, maskTokens], null, B.Int("axis", 1)), builder.Int64Initializer("restore", restore)], null, B.Int("axis", 1));
            var first = builder.Node("Slice", [x, builder.Int64Initializer("zero", [0]), builder.Int64Initializer("one", [1]), builder.Int64Initializer("axis1", [1])]);
            x = builder.Node("Add", [builder.Node("Concat", [first, ordered], null, B.Int("axis", 1)), EncoderOnnxExporter.Weights(builder, decoder.PositionEmbedding)]);
            foreach (var block in decoder.Blocks) x = VisionTransformerGraph.Block(builder, block, x, width);
            x = VisionTransformerGraph.Linear(builder, decoder.Prediction, VisionTransformerGraph.Norm(builder, decoder.Norm, x));
            var prediction = builder.Node("Slice", [x, builder.Int64Initializer("one", [1]), builder.Int64Initializer("end", [long.MaxValue]), builder.Int64Initializer("axis1", [1])]);
            var difference = builder.Node("Sub", [prediction, target]);
            var squared = builder.Node("ReduceMean", [builder.Node("Mul", [difference, difference])], null, B.Ints("axes", [-1]), B.Int("keepdims", 0));
            var weights = Enumerable.Range(0, (int)patches).Select(p => visible.Contains(p) ? 0f : 1f / hiddenCounts[p]).ToArray();
            var weighted = builder.Node("Mul", [squared, builder.Initializer("mask_weights", weights, 1, patches)]);
            error = error is null ? weighted : builder.Node("Add", [error, weighted]);
        }

        // z = (log(e + floor) − μ_p) / σ_p; energy = (mean z − a) / b + (mean z² − c) / d.
        var logs = builder.Node("Log", [builder.Node("Add", [error!, builder.Initializer("floor", [(float)ReconstructionEnergy.LogFloor], 1)])]);
        var z = builder.Node("Mul", [builder.Node("Sub", [logs, builder.Initializer("patch_log_mean", [.. calibration.PatchLogMean.Select(v => (float)v)], 1, patches)]),
            builder.Initializer("patch_log_inv_std", [.. calibration.PatchLogStd.Select(v => (float)(1 / v))], 1, patches)]);
        string Term(string values, double termMean, double termStd) => builder.Node("Mul", [
            builder.Node("Sub", [builder.Node("ReduceMean", [values], null, B.Ints("axes", [1]), B.Int("keepdims", 1)), builder.Initializer("term_mean", [(float)termMean], 1)]),
            builder.Initializer("term_inv_std", [(float)(1 / termStd)], 1)]);
        var result = builder.Node("Add", [Term(z, calibration.MeanZMean, calibration.MeanZStd), Term(builder.Node("Mul", [z, z]), calibration.MeanSquaredZMean, calibration.MeanSquaredZStd)]);
        EncoderOnnxExporter.Output(builder, result, 1, options.OutputName, l2Normalize: false, options.FlatOutput);
        return EncoderOnnxExporter.Model(builder.Graph,
            $"Reconstruction energy of an MAE ({encoderOptions.Describe()}), {energy.Masks.Count} cover masks, calibrated on {calibration.ReferenceImages} images: {channels}×{size}×{size} pixels (0–255) → [N, 1]");
    }
}
