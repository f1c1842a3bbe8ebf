using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Targets that follow an online network by exponential moving average (BYOL's target network, MoCo's key encoder):
/// θ_target ← τ·θ_target + (1 − τ)·θ_online. Targets take no gradient and are left out of the optimizer; their
/// batch-norm statistics come from their own forward passes.
/// </summary>
internal static class MomentumTarget
{
    /// <summary>Copies <paramref name="online"/>'s parameters and buffers into <paramref name="target"/> (same architecture) and freezes it.</summary>
    public static void Initialize(nn.Module online, nn.Module target)
    {
        using var noGrad = no_grad();
        foreach (var ((_, source), (_, copy)) in online.named_parameters().Zip(target.named_parameters()))
        {
            copy.copy_(source);
            copy.requires_grad = false;
        }
        foreach (var (source, copy) in online.buffers().Zip(target.buffers())) copy.copy_(source);
    }

    /// <summary>One moving-average step with momentum <paramref name="tau"/> ∈ [0, 1].</summary>
    public static void Update(nn.Module online, nn.Module target, double tau)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (source, copy) in online.parameters().Zip(target.parameters()))
            copy.mul_(tau).add_(source, alpha: 1 - tau);
    }

    /// <summary>BYOL's schedule: τ rises from <paramref name="baseTau"/> to 1 along a cosine, τ = 1 − (1 − τ_base)·(cos(π·progress) + 1) / 2.</summary>
    public static double Tau(double baseTau, double progress) =>
        1 - (1 - baseTau) * (Math.Cos(Math.PI * Math.Clamp(progress, 0, 1)) + 1) / 2;
}
