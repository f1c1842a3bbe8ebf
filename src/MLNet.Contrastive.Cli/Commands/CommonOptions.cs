using System.CommandLine;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>The options several commands take, declared once: the same name, description and default everywhere.</summary>
internal static class CommonOptions
{
    /// <summary>--seed; <paramref name="seeds"/> says what it seeds in this command.</summary>
    public static Option<int> Seed(string seeds) => new("--seed") { Description = $"Seed of {seeds}. Default {new RunOptions().Seed}.", DefaultValueFactory = _ => new RunOptions().Seed };

    /// <summary>--threads: libtorch's CPU threads.</summary>
    public static Option<int> Threads() => new("--threads") { Description = "CPU threads for libtorch. Default: one per processor.", DefaultValueFactory = _ => new RunOptions().Threads };

    /// <summary>--weight-decay: the optimizer's (decoupled for AdamW); <paramref name="defaults"/> are the command's run settings.</summary>
    public static Option<double> WeightDecay(RunOptions defaults) => new("--weight-decay")
    {
        Description = "Weight decay (AdamW's decoupled; SGD's and LARS's L2).", DefaultValueFactory = _ => defaults.WeightDecay,
    };

    /// <summary>--device: where TorchSharp trains.</summary>
    public static Option<string> Device() => new("--device") { Description = "cpu, cuda or auto. Default auto.", DefaultValueFactory = _ => "auto" };

    /// <summary>--encoder: a named encoder (default small); <paramref name="when"/> says when the command uses it.</summary>
    public static Option<EncoderPreset?> Encoder(string? when = null) => new("--encoder")
    {
        Description = (when is null ? "" : $"{when}: ") + "Encoder: Small (stem 16, stages 32-64-128), Base (stem 32, stages 64-128-256, two blocks each), torchvision's ResNet18, ResNet34 (512-d) or ResNet50 (bottlenecks, 2,048-d), or a Vision Transformer VitTiny (192-d) or VitSmall (384-d; patches of 4 px up to 32 px images, 8 up to 96, 16 above); docs/backbones.md gives their cost. Default Small.",
    };

    /// <summary>--init: pretrained weights to start from (hierarchical pretraining).</summary>
    public static Option<string?> Init() => new("--init")
    {
        Description = "Start from a pretrained encoder instead of random weights, with any method: a pretraining run's folder or checkpoint.bin, a PyTorch state dict " +
                      "(.pt, .pth, .safetensors: torchvision, timm, lightly or solo-learn ResNets and ViTs), or imagenet-resnet18 (ML.NET's ImageNet ResNet-18, RGB; " +
                      "it keeps its ImageNet stem, so give it images of 96 px or more). Its encoder shape and input normalisation come with it.",
    };

    /// <summary>The encoder --init and --normalization name; null without --init.</summary>
    public static Training.PretrainedEncoder? LoadInit(string? init, string? normalization) =>
        init is null ? null : Training.PretrainedEncoder.Load(init, ParseNormalization(normalization));

    /// <summary>--normalization: what a PyTorch state dict's weights expect of the pixels.</summary>
    public static Option<string?> Normalization() => new("--normalization")
    {
        Description = "With a PyTorch state dict (--init or finetune's --model <file>.pt|.pth|.safetensors): the input normalisation its weights expect on pixels in [0, 1] — imagenet (mean 0.485/0.456/0.406, " +
                      "std 0.229/0.224/0.225), half (mean 0.5, std 0.5), or MEAN/STD with one comma-separated value per channel (e.g. 0.5,0.5,0.5/0.25,0.25,0.25). Default imagenet.",
    };

    /// <summary>The normalisation --normalization names; null for the default (ImageNet's).</summary>
    public static (float[] Mean, float[] Std)? ParseNormalization(string? text)
    {
        if (text is null || text.Equals("imagenet", StringComparison.OrdinalIgnoreCase)) return null;
        if (text.Equals("half", StringComparison.OrdinalIgnoreCase)) return ([0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f]);
        var parts = text.Split('/');
        float[] Values(string part) => part.Split(',').Select(v => float.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var f) && float.IsFinite(f)
            ? f : throw new ArgumentException($"--normalization: '{v}' is not a number.")).ToArray();
        if (parts.Length != 2) throw new ArgumentException($"--normalization: '{text}' is not imagenet, half or MEAN/STD (e.g. 0.5,0.5,0.5/0.25,0.25,0.25).");
        var (mean, std) = (Values(parts[0]), Values(parts[1]));
        if (mean.Length != std.Length) throw new ArgumentException($"--normalization: {mean.Length} means but {std.Length} standard deviations.");
        if (std.Any(s => s <= 0)) throw new ArgumentException("--normalization: standard deviations must be positive.");
        return (mean, std);
    }
}
