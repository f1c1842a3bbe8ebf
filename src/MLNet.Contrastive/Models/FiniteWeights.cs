using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Models;

/// <summary>
/// Finds weights that are NaN or infinite: the one check behind training's after-step test, every checkpoint's save and
/// load, and export. Parameters and buffers (batch-norm statistics, moving-average targets, queues) alike.
/// </summary>
internal static class FiniteWeights
{
    /// <summary>
    /// The state-dict name of the first floating-point tensor of <paramref name="module"/> that holds a NaN or an
    /// infinity; null when every one is finite. One float64 sum per tensor and a single read back: a float64 sum of
    /// finite float32 values cannot overflow, so it is finite exactly when every element is.
    /// </summary>
    public static string? FirstNonFinite(nn.Module module)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var named = module.state_dict().Where(p => p.Value.is_floating_point()).ToList();
        if (named.Count == 0) return null;
        using var finite = stack(named.Select(p => p.Value.detach().sum(ScalarType.Float64)).ToArray()).isfinite().cpu();
        if (finite.all().item<bool>()) return null;
        return named[Array.IndexOf(finite.data<bool>().ToArray(), false)].Key;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming <paramref name="source"/> and the first non-finite tensor.</summary>
    public static void Check(nn.Module module, string source)
    {
        if (FirstNonFinite(module) is { } name)
            throw new InvalidDataException(
                $"{source} holds NaN or infinite weights (first: '{name}'): the training that wrote it diverged. Use an earlier checkpoint, or train again at a lower learning rate.");
    }
}
