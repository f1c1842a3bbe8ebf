using MLNet.Contrastive.Runtime;
using TorchSharp;

namespace MLNet.Contrastive.Tests.Runtime;

public class OneDnnGuardTests
{
    /// <summary>
    /// The loaded libtorch's global context agrees with the guard: oneDNN's convolutions are off exactly where the CPU
    /// reports no caches to CPUID (or the environment variable says so). On such a CPU the standard-backbone tests are
    /// the proof that it matters: with oneDNN a ResNet-50 step dies of SIGFPE there and a ResNet-18 misses ONNX Runtime by 0.05.
    /// </summary>
    [Test]
    public void LibtorchRunsOneDnnExactlyWhereTheCpuReportsItsCaches()
    {
        TorchRuntime.Initialize();
        using var warm = torch.ones(1);
        var folder = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        var setting = Environment.GetEnvironmentVariable(OneDnnGuard.Variable);
        TestContext.Out.WriteLine($"CPU reports caches: {OneDnnGuard.CpuReportsCaches()}; {OneDnnGuard.Variable}={setting ?? "(unset)"}; oneDNN convolutions off: {TorchRuntime.OneDnnConvolutionsOff}");
        if (setting is null) Assert.That(TorchRuntime.OneDnnConvolutionsOff, Is.EqualTo(!OneDnnGuard.CpuReportsCaches()));
        Assert.That(OneDnnGuard.Enabled(folder), Is.EqualTo(!TorchRuntime.OneDnnConvolutionsOff), "what libtorch's context says");
    }
}
