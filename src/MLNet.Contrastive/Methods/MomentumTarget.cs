using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Targets that follow online networks by exponential moving average (BYOL's target network, MoCo's key encoder):
/// θ_target ← τ·θ_target + (1 − τ)·θ_online. Targets take no gradient and are left out of the optimizer; their
/// batch-norm statistics come from their own forward passes.
/// </summary>
internal sealed class MomentumTarget
{
    private readonly (nn.Module Online, nn.Module Target)[] modules;

    /// <summary>Copies each online module's parameters and buffers into its target (same architecture) and freezes the target.</summary>
    public MomentumTarget(params (nn.Module Online, nn.Module Target)[] modules)
    {
        this.modules = modules;
        using var noGrad = no_grad();
        foreach (var (online, target) in modules)
        {
            foreach (var (source, copy) in online.parameters().Zip(target.parameters()))
            {
                copy.copy_(source);
                copy.requires_grad = false;
            }
            foreach (var (source, copy) in online.buffers().Zip(target.buffers())) copy.copy_(source);
        }
    }

    /// <summary>One moving-average step with momentum <paramref name="tau"/> ∈ [0, 1].</summary>
    public void Update(double tau)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (online, target) in modules.SelectMany(m => m.Online.parameters().Zip(m.Target.parameters())))
            target.lerp_(online, 1 - tau);
    }

    /// <summary>BYOL's schedule: τ rises from <paramref name="baseTau"/> to 1 along a cosine, τ = 1 − (1 − τ_base)·(cos(π·progress) + 1) / 2.</summary>
    public static double Tau(double baseTau, double progress) =>
        1 - (1 - baseTau) * (Math.Cos(Math.PI * Math.Clamp(progress, 0, 1)) + 1) / 2;
}
