using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;

namespace MLNet.Contrastive.Cluster.Tests;

/// <summary>
/// What the cluster tests share: a redis-server on loopback at a free port (started here, stopped at the end),
/// Fashion-MNIST sample images written as PNG files, and a small encoder exported to ONNX.
/// </summary>
[SetUpFixture]
public sealed class ClusterFixture
{
    public const int ImageCount = 300;
    private static Process? redis;

    public static string Redis { get; private set; } = "";
    public static string Folder { get; private set; } = "";
    public static string Images => Path.Combine(Folder, "images");
    public static string Encoder => Path.Combine(Folder, "encoder.onnx");

    [OneTimeSetUp]
    public void Start()
    {
        Folder = Path.Combine(Path.GetTempPath(), "mlnc-cluster-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Images);
        var port = FreePort();
        Redis = $"127.0.0.1:{port}";
        redis = Process.Start(new ProcessStartInfo("redis-server", ["--port", $"{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        }) ?? throw new InvalidOperationException("redis-server did not start.");
        redis.OutputDataReceived += (_, _) => { };
        redis.BeginOutputReadLine();
        WaitForPort(port, TimeSpan.FromSeconds(20));

        WriteImages(Images, ImageCount);
        using var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        EncoderOnnxExporter.Export(encoder, Encoder);
    }

    /// <summary>The first <paramref name="count"/> images of the bundled Fashion-MNIST sample as PNG files.</summary>
    public static void WriteImages(string folder, int count)
    {
        Directory.CreateDirectory(folder);
        var sample = ImageStore.Load(Path.Combine(TestContext.CurrentContext.TestDirectory, "Sample", "train-images-idx3-ubyte.gz"));
        for (var i = 0; i < count; i++)
        {
            var grey = sample.Image(i);
            var bgra = new byte[grey.Length * 4];
            for (var p = 0; p < grey.Length; p++) (bgra[4 * p], bgra[4 * p + 1], bgra[4 * p + 2], bgra[4 * p + 3]) = (grey[p], grey[p], grey[p], 255);
            using var image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, bgra);
            image.Save(Path.Combine(folder, $"img{i:D4}.png"));
        }
    }

    /// <summary>A loopback port nothing listens on now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [OneTimeTearDown]
    public void Stop()
    {
        if (redis is { HasExited: false })
        {
            redis.Kill();
            redis.WaitForExit(10_000);
        }
        redis?.Dispose();
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }

    private static void WaitForPort(int port, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (clock.Elapsed < timeout && redis is { HasExited: false })
            {
                Thread.Sleep(100);
            }
        }
    }
}
