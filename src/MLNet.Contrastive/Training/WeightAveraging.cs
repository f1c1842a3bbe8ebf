using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// Uniform averaging of the weights of networks of one architecture: a model soup (Wortsman et al., "Model soups:
/// averaging weights of multiple fine-tuned models improves accuracy without increasing inference time", ICML 2022).
/// It works for networks fine-tuned from the same pretrained weights, which stay in one basin of the loss; networks
/// trained from different random weights do not align unit for unit, and their average is no network at all.
/// </summary>
public static class WeightAveraging
{
    /// <summary>
    /// Replaces every floating-point parameter and buffer of <paramref name="target"/> (batch norm's running mean and
    /// variance included, as the soups' recipe does) by its mean over <paramref name="target"/> and
    /// <paramref name="others"/>; integer buffers (batch norm's step counts) stay the target's. Every network must have
    /// the target's state-dict names and shapes. A tensor that appears under several names is averaged once.
    /// </summary>
    public static void Average(nn.Module target, IReadOnlyList<nn.Module> others)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(others);
        if (others.Count == 0) return;
        var sums = target.state_dict();
        var states = others.Select(o => o.state_dict()).ToList();
        for (var m = 0; m < states.Count; m++)
        {
            var names = string.Join(", ", sums.Keys.Except(states[m].Keys).Concat(states[m].Keys.Except(sums.Keys)).Take(5));
            if (names.Length > 0) throw new ArgumentException($"Network {m + 1} of {nameof(others)} is not the target's architecture: {names} differ.", nameof(others));
            foreach (var (name, value) in sums)
                if (!value.shape.SequenceEqual(states[m][name].shape))
                    throw new ArgumentException($"Network {m + 1} of {nameof(others)} has {name} of shape [{string.Join(", ", states[m][name].shape)}], the target [{string.Join(", ", value.shape)}].", nameof(others));
        }
        using var noGrad = no_grad();
        // Each network's share is added, not their sum divided: a sum of large float32 weights can overflow to infinity.
        // Explicit scalars: TorchSharp's add_(Tensor) passes an implicit one that a finalizer may free mid-call.
        using var share = (1.0 / (others.Count + 1)).ToScalar();
        // A tensor can appear under two names (a method's encoder is registered by the method and by its base class):
        // each is averaged once.
        var averaged = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (name, value) in sums)
        {
            if (!value.is_floating_point() || !averaged.Add(value)) continue;
            value.mul_(share);
            foreach (var state in states) value.add_(state[name], share);
        }
    }
}
