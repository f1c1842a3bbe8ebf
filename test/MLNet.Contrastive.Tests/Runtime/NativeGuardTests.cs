using MLNet.Contrastive.Runtime;
using TorchSharp;

namespace MLNet.Contrastive.Tests.Runtime;

/// <summary>The settings this library makes in the loaded libtorch, read back from libtorch itself.</summary>
public class NativeGuardTests
{
    private static readonly string? TorchFolder = Path.GetDirectoryName(typeof(torch).Assembly.Location);

    [SetUp]
    public void LoadLibtorch()
    {
        TorchRuntime.Initialize();
        using var warm = torch.ones(1);
    }

    /// <summary>
    /// The loaded libtorch's global context agrees with the guard: oneDNN's convolutions are off exactly where the CPU
    /// reports no caches to CPUID (or the environment variable says so). On such a CPU the standard-backbone tests are
    /// the proof that it matters: with oneDNN a ResNet-50 step dies of SIGFPE there and a ResNet-18 misses ONNX Runtime by 0.05.
    /// </summary>
    [Test]
    public void LibtorchRunsOneDnnExactlyWhereTheCpuReportsItsCaches()
    {
        var setting = Environment.GetEnvironmentVariable(OneDnnGuard.Variable);
        TestContext.Out.WriteLine($"CPU reports caches: {OneDnnGuard.CpuReportsCaches()}; {OneDnnGuard.Variable}={setting ?? "(unset)"}; oneDNN convolutions off: {TorchRuntime.OneDnnConvolutionsOff}");
        if (setting is null) Assert.That(TorchRuntime.OneDnnConvolutionsOff, Is.EqualTo(!OneDnnGuard.CpuReportsCaches()));
        Assert.That(OneDnnGuard.Enabled(TorchFolder), Is.EqualTo(!TorchRuntime.OneDnnConvolutionsOff), "what libtorch's context says");
    }

    /// <summary>
    /// libtorch's c10 log reaches stderr from ERROR up unless TORCH_CPP_LOG_LEVEL says otherwise: on CPUs NNPACK does not
    /// support, its WARNING "Could not initialize NNPACK!" otherwise fills a run's output, about twenty lines a step.
    /// </summary>
    [Test]
    public void LibtorchLogsOnlyErrorsUnlessPyTorchsVariableIsSet()
    {
        var setting = Environment.GetEnvironmentVariable(NativeLogLevel.Variable);
        TestContext.Out.WriteLine($"{NativeLogLevel.Variable}={setting ?? "(unset)"}; threshold {NativeLogLevel.Current(TorchFolder)}");
        if (string.IsNullOrWhiteSpace(setting)) Assert.That(NativeLogLevel.Current(TorchFolder), Is.EqualTo(NativeLogLevel.Error));
        else Assert.That(NativeLogLevel.Current(TorchFolder), Is.Not.Null);
    }
}
