using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Models;

/// <summary>
/// Loads a PyTorch ResNet state dict — torchvision's names (<c>conv1</c>, <c>bn1</c>, <c>layer1.0.conv1</c>,
/// <c>layer2.0.downsample.0</c>, …), as torchvision, timm, lightly and solo-learn save them — into a
/// <see cref="ResNetEncoder"/> of the same shape. Files: <c>torch.save</c>'s format (<c>.pt</c>, <c>.pth</c>) or
/// <c>.safetensors</c>, read by TorchSharp.PyBridge. A prefix before the backbone's names (<c>backbone.</c>,
/// <c>encoder.</c>, <c>module.</c>, …) is stripped; the classifier (<c>fc.</c>) and other heads are ignored. The shape
/// is read from the weights: stem (7 × 7 ImageNet stem, or the 3 × 3 small-image stem of CIFAR recipes), widths and
/// blocks per stage, basic blocks (ResNet-18, -34) or bottlenecks (ResNet-50, -101, -152). Also a Vision Transformer's,
/// in torchvision's names (<c>conv_proj</c>, <c>class_token</c>, <c>encoder.layers.encoder_layer_i.self_attention.in_proj_weight</c>,
/// …) or timm's (<c>patch_embed.proj</c>, <c>cls_token</c>, <c>blocks.i.attn.qkv</c>, …) into a <see cref="VisionTransformer"/>:
/// patch size, width, depth, MLP width and image size read from the weights, heads 64 wide unless given (as every ViT
/// of torchvision, timm, DeiT and DINO). Input normalisation: ImageNet's unless given.
/// </summary>
public static class TorchvisionWeights
{
    /// <summary>Whether <paramref name="path"/> names a PyTorch weights file by its extension (.pt, .pth, .safetensors).</summary>
    public static bool IsWeightsFile(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".pt" or ".pth" or ".safetensors";

    /// <summary>
    /// The encoder of the ResNet in <paramref name="path"/>, in eval mode. <paramref name="mean"/> and
    /// <paramref name="std"/> are the per-channel normalisation the weights expect on pixels in [0, 1] (default ImageNet's).
    /// Throws <see cref="InvalidDataException"/> naming the file, with the missing and unexpected keys or the shape that differs.
    /// </summary>
    public static ImageEncoder Load(string path, float[]? mean = null, float[]? std = null, int? heads = null)
    {
        var state = Read(path);
        if (!state.Keys.Any(k => k.EndsWith("layer1.0.conv1.weight", StringComparison.Ordinal))
            && state.Keys.Any(k => k.EndsWith(TorchvisionVitAnchor, StringComparison.Ordinal) || k.EndsWith(TimmVitAnchor, StringComparison.Ordinal)))
            return LoadVit(path, state, mean, std, heads);
        const string anchor = "layer1.0.conv1.weight";
        var anchored = state.Keys.Where(k => k.EndsWith(anchor, StringComparison.Ordinal)).ToList();
        if (anchored.Count != 1)
            throw new InvalidDataException(anchored.Count == 0
                ? $"{path}: no ResNet backbone in it (no key ends with '{anchor}'; keys: {Sample(state.Keys)})."
                : $"{path}: {anchored.Count} ResNet backbones in it ({string.Join(", ", anchored)}); keep one.");
        var prefix = anchored[0][..^anchor.Length];
        var weights = state.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(p => p.Key[prefix.Length..], p => p.Value);

        var options = Shape(path, weights, mean, std);
        var encoder = new ResNetEncoder(options);
        var names = Names(encoder);
        var missing = names.Values.Where(n => !weights.ContainsKey(n)).ToList();
        var unexpected = weights.Keys.Where(k => !names.ContainsValue(k) && !k.StartsWith("fc.", StringComparison.Ordinal) && !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{path}: not a torchvision-layout ResNet{(prefix.Length > 0 ? $" under '{prefix}'" : "")}: " +
                $"missing keys [{string.Join(", ", missing)}], unexpected keys [{string.Join(", ", unexpected)}].");
        return CopyInto(encoder, names.Select(n => (n.Key, n.Value)), weights, state, path, prefix);
    }

    /// <summary>
    /// Copies each (ours, theirs) tensor of the file into the encoder, checking its shape; frees the file's tensors,
    /// checks that every weight is finite, and returns the encoder in eval mode.
    /// </summary>
    private static T CopyInto<T>(T encoder, IEnumerable<(string Ours, string Theirs)> pairs, Dictionary<string, Tensor> weights,
        Dictionary<string, Tensor> state, string path, string prefix) where T : ImageEncoder
    {
        using (var noGrad = no_grad())
        {
            var target = encoder.state_dict();
            foreach (var (ours, theirs) in pairs)
            {
                var source = weights[theirs];
                if (!source.shape.SequenceEqual(target[ours].shape))
                    throw new InvalidDataException($"{path}: '{prefix}{theirs}' is [{string.Join(", ", source.shape)}]; this encoder's '{ours}' takes [{string.Join(", ", target[ours].shape)}].");
                target[ours].copy_(source.to(target[ours].dtype));
            }
        }
        foreach (var tensor in state.Values) tensor.Dispose();
        FiniteWeights.Check(encoder, path);
        encoder.eval();
        return encoder;
    }

    private const string TorchvisionVitAnchor = "conv_proj.weight";
    private const string TimmVitAnchor = "patch_embed.proj.weight";

    /// <summary>A ViT state dict (torchvision's or timm's names) into a <see cref="VisionTransformer"/>; heads and classifiers ignored.</summary>
    private static VisionTransformer LoadVit(string path, Dictionary<string, Tensor> state, float[]? mean, float[]? std, int? heads)
    {
        var anchored = state.Keys.Where(k => k.EndsWith(TimmVitAnchor, StringComparison.Ordinal) || k.EndsWith(TorchvisionVitAnchor, StringComparison.Ordinal)).ToList();
        if (anchored.Count != 1)
            throw new InvalidDataException($"{path}: {anchored.Count} Vision Transformers in it ({string.Join(", ", anchored)}); keep one.");
        var torchvision = !anchored[0].EndsWith(TimmVitAnchor, StringComparison.Ordinal);
        var prefix = anchored[0][..^(torchvision ? TorchvisionVitAnchor : TimmVitAnchor).Length];
        var weights = state.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(p => torchvision ? TimmName(p.Key[prefix.Length..]) : p.Key[prefix.Length..], p => p.Value);
        long[] Dims(string key) => weights.TryGetValue(key, out var t) ? t.shape : throw new InvalidDataException($"{path}: missing key '{prefix}{key}'.");

        var patch = Dims("patch_embed.proj.weight");
        var tokens = Dims("pos_embed")[1] - 1;
        var grid = (int)Math.Round(Math.Sqrt(tokens));
        if (grid * grid != tokens) throw new InvalidDataException($"{path}: {tokens} position embeddings besides the class token; a square grid of patches has a square number.");
        var (width, channels) = ((int)patch[0], (int)patch[1]);
        var options = new EncoderOptions
        {
            Architecture = EncoderArchitecture.VisionTransformer,
            InputChannels = channels,
            PatchSize = (int)patch[2],
            ImageSize = grid * (int)patch[2],
            HiddenDimension = width,
            Heads = heads ?? Math.Max(1, width / 64),
            Depth = Enumerable.Range(0, 1024).TakeWhile(i => weights.ContainsKey($"blocks.{i}.attn.qkv.weight")).Count(),
            MlpDimension = (int)Dims("blocks.0.mlp.fc1.weight")[0],
            Mean = mean ?? (channels == 3 ? [.. EncoderOptions.ImageNetMean] : [EncoderOptions.ImageNetMean.Average()]),
            Std = std ?? (channels == 3 ? [.. EncoderOptions.ImageNetStd] : [EncoderOptions.ImageNetStd.Average()]),
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        var encoder = new VisionTransformer(options);
        var target = encoder.state_dict();
        var own = target.Keys.Where(k => k is not ("mean" or "std")).ToList();
        var missing = own.Where(k => !weights.ContainsKey(k)).ToList();
        var unexpected = weights.Keys.Where(k => !target.ContainsKey(k) && !k.StartsWith("head", StringComparison.Ordinal)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{path}: not a {(torchvision ? "torchvision" : "timm")}-layout ViT{(prefix.Length > 0 ? $" under '{prefix}'" : "")}: " +
                $"missing keys [{string.Join(", ", missing)}], unexpected keys [{string.Join(", ", unexpected)}].");
        // A torchvision file's names were translated: its errors name the tensor by this encoder's (timm's) name.
        return CopyInto(encoder, own.Select(k => (k, k)), weights, state, path, torchvision ? "" : prefix);
    }

    /// <summary>torchvision's ViT name → timm's (this project's): <c>encoder.layers.encoder_layer_3.mlp.0.weight</c> → <c>blocks.3.mlp.fc1.weight</c>.</summary>
    internal static string TimmName(string name)
    {
        if (name == "class_token") return "cls_token";
        if (name == "encoder.pos_embedding") return "pos_embed";
        if (name.StartsWith("conv_proj.", StringComparison.Ordinal)) return "patch_embed.proj." + name["conv_proj.".Length..];
        if (name.StartsWith("encoder.ln.", StringComparison.Ordinal)) return "norm." + name["encoder.ln.".Length..];
        const string layer = "encoder.layers.encoder_layer_";
        if (!name.StartsWith(layer, StringComparison.Ordinal)) return name;
        var rest = name[layer.Length..];
        var dot = rest.IndexOf('.');
        var (index, field) = (rest[..dot], rest[(dot + 1)..]);
        field = field switch
        {
            "self_attention.in_proj_weight" => "attn.qkv.weight",
            "self_attention.in_proj_bias" => "attn.qkv.bias",
            _ => field.Replace("self_attention.out_proj.", "attn.proj.").Replace("ln_1.", "norm1.").Replace("ln_2.", "norm2.")
                .Replace("mlp.0.", "mlp.fc1.").Replace("mlp.3.", "mlp.fc2.").Replace("mlp.linear_1.", "mlp.fc1.").Replace("mlp.linear_2.", "mlp.fc2."),
        };
        return $"blocks.{index}.{field}";
    }

    /// <summary>Every tensor of the file by name; a file that cannot be read is named with the reason.</summary>
    private static Dictionary<string, Tensor> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such weights file.", path);
        try
        {
            var tensors = Path.GetExtension(path).Equals(".safetensors", StringComparison.OrdinalIgnoreCase)
                ? (Dictionary<string, Tensor>)Reader("Safetensors", "LoadStateDict", [typeof(string), typeof(List<string>)]).Invoke(null, [path, null])!
                : ((System.Collections.Hashtable)Reader("PyTorchUnpickler", "UnpickleStateDict", [typeof(string)]).Invoke(null, [path])!)
                    .Cast<System.Collections.DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
            return tensors.Count > 0 ? tensors : throw new InvalidDataException($"{path}: the file holds no tensors.");
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is not OutOfMemoryException)
        {
            var cause = e.InnerException ?? e;
            throw new InvalidDataException($"{path}: not a readable PyTorch state dict ({cause.Message.Split('\n')[0].TrimEnd('.')}). " +
                "Save the weights with torch.save(model.state_dict(), …) or as safetensors.", cause);
        }
    }

    /// <summary>
    /// TorchSharp.PyBridge's readers that return the whole state dict (its public load_py and load_safetensors only copy
    /// into a module's own names, and this encoder's differ from torchvision's): internal in 1.4.4, so found by name, and
    /// named in the error should a later version rename them.
    /// </summary>
    private static System.Reflection.MethodInfo Reader(string type, string method, Type[] parameters) =>
        typeof(PyBridgeModuleExtensions).Assembly.GetType($"TorchSharp.PyBridge.{type}")?.GetMethod(method,
            System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static, parameters)
        ?? throw new InvalidOperationException($"TorchSharp.PyBridge {typeof(PyBridgeModuleExtensions).Assembly.GetName().Version} has no {type}.{method}; this build expects 1.4.4.");

    /// <summary>The encoder's shape read from the weights.</summary>
    private static EncoderOptions Shape(string path, Dictionary<string, Tensor> weights, float[]? mean, float[]? std)
    {
        long[] Dims(string key) => weights.TryGetValue(key, out var t) ? t.shape : throw new InvalidDataException($"{path}: missing key '{key}'.");
        var stem = Dims("conv1.weight");
        var stages = Enumerable.Range(1, 8).TakeWhile(s => weights.ContainsKey($"layer{s}.0.conv1.weight")).ToList();
        var blocks = stages.Select(s => Enumerable.Range(0, 64).TakeWhile(b => weights.ContainsKey($"layer{s}.{b}.conv1.weight")).Count()).ToArray();
        var channels = (int)stem[1];
        var bottleneck = weights.ContainsKey("layer1.0.conv3.weight");
        var options = new EncoderOptions
        {
            InputChannels = channels,
            SmallImageStem = stem[2] == 3,
            StemWidth = (int)stem[0],
            // A stage's width is its blocks' output: conv2's in a basic block, conv3's in a bottleneck.
            Bottleneck = bottleneck,
            StageWidths = [.. stages.Select(s => (int)Dims($"layer{s}.0.conv{(bottleneck ? 3 : 2)}.weight")[0])],
            BlocksPerStage = blocks[0],
            StageBlocks = blocks.Distinct().Count() == 1 ? null : blocks,
            FirstStageStride = 1,
            EmbeddingStages = 1,
            EmbeddingGrid = 1,
            Mean = mean ?? (channels == 3 ? [.. EncoderOptions.ImageNetMean] : [EncoderOptions.ImageNetMean.Average()]),
            Std = std ?? (channels == 3 ? [.. EncoderOptions.ImageNetStd] : [EncoderOptions.ImageNetStd.Average()]),
        };
        if (stem[2] is not (3 or 7)) throw new InvalidDataException($"{path}: a {stem[2]}×{stem[3]} stem convolution; torchvision's is 7×7 and CIFAR recipes' 3×3.");
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        return options;
    }

    /// <summary>This encoder's state-dict name → torchvision's, for every weight and statistic (not the normalisation).</summary>
    internal static Dictionary<string, string> Names(ResNetEncoder encoder)
    {
        var names = new Dictionary<string, string>();
        void Norm(string ours, string theirs)
        {
            foreach (var field in new[] { "weight", "bias", "running_mean", "running_var" }) names[$"{ours}.{field}"] = $"{theirs}.{field}";
        }
        names["stem.conv.weight"] = "conv1.weight";
        Norm("stem.bn", "bn1");
        var block = 0;
        for (var stage = 0; stage < encoder.Options.StageWidths.Length; stage++)
            for (var i = 0; i < encoder.Options.BlocksIn(stage); i++, block++)
            {
                var (ours, theirs) = ($"blocks.{block}", $"layer{stage + 1}.{i}");
                var layers = encoder.Blocks.ElementAt(block).Layers.Count;
                for (var layer = 1; layer <= layers; layer++)
                {
                    names[$"{ours}.conv{layer}.weight"] = $"{theirs}.conv{layer}.weight";
                    Norm($"{ours}.bn{layer}", $"{theirs}.bn{layer}");
                }
                if (encoder.Blocks.ElementAt(block).Shortcut is not null)
                {
                    names[$"{ours}.shortcut.conv.weight"] = $"{theirs}.downsample.0.weight";
                    Norm($"{ours}.shortcut.bn", $"{theirs}.downsample.1");
                }
            }
        var own = encoder.state_dict().Keys.Where(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal) && k is not ("mean" or "std")).ToHashSet();
        if (!own.SetEquals(names.Keys))
            throw new InvalidOperationException($"The encoder's layout changed: unmapped [{string.Join(", ", own.Except(names.Keys))}], stale [{string.Join(", ", names.Keys.Except(own))}].");
        return names;
    }

    private static string Sample(IEnumerable<string> keys) =>
        string.Join(", ", keys.Take(6)) + (keys.Skip(6).Any() ? ", …" : "");
}
