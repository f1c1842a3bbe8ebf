using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Onnx;

/// <summary>Settings of an <see cref="ImageEmbedder"/>.</summary>
public sealed class ImageEmbedderOptions
{
    /// <summary>Images per ONNX Runtime call. Default 256.</summary>
    public int BatchSize { get; set; } = 256;

    /// <summary>Ask for the CUDA execution provider; falls back to the CPU when it cannot be loaded. Default false.</summary>
    public bool UseCuda { get; set; }

    /// <summary>CUDA device index. Default 0.</summary>
    public int CudaDeviceId { get; set; }

    /// <summary>Intra-op threads for the CPU provider. Default: all processors.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>Receives the one line saying which execution provider runs. Default: <see cref="Trace"/>.</summary>
    public Action<string>? Log { get; set; }
}

/// <summary>
/// Runs an exported encoder with ONNX Runtime on whole batches (the ML.NET stage scores one row at a time):
/// [B, C, H, W] pixel values 0–255 in, [B, D] embeddings out. CPU by default, CUDA when asked and available.
/// </summary>
public sealed class ImageEmbedder : IDisposable
{
    private readonly InferenceSession session;
    private readonly ImageEmbedderOptions options;
    private readonly string inputName, outputName;
    private readonly int[] inputDims;

    /// <summary>
    /// Session options; the first use of ONNX Runtime loads its native library, which this library does not bring
    /// (the application chooses it), so its absence is named here.
    /// </summary>
    private static SessionOptions NewSessionOptions(int threads)
    {
        try
        {
            return new SessionOptions { IntraOpNumThreads = threads };
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException { InnerException: DllNotFoundException })
        {
            throw new InvalidOperationException(
                "ONNX Runtime's native library was not found: the application must reference Microsoft.ML.OnnxRuntime (CPU) or " +
                "Microsoft.ML.OnnxRuntime.Gpu (CUDA, falls back to the CPU); MLNet.Contrastive depends only on Microsoft.ML.OnnxRuntime.Managed.", e);
        }
    }

    /// <summary>Opens <paramref name="onnxPath"/> (an encoder exported by <see cref="EncoderOnnxExporter"/>: input [N, C, H, W], output [N, E]) on the CPU, or on CUDA when asked and available.</summary>
    public ImageEmbedder(string onnxPath, ImageEmbedderOptions? options = null)
    {
        this.options = options ??= new ImageEmbedderOptions();
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "The batch size must be positive.");
        if (!File.Exists(onnxPath)) throw new FileNotFoundException($"{onnxPath}: ONNX model not found.", onnxPath);
        OnnxWeights.CheckFinite(onnxPath);
        var log = options.Log ?? (line => Trace.TraceInformation(line));
        using var sessionOptions = NewSessionOptions(options.Threads);
        ExecutionProvider = "CPU";
        if (options.UseCuda && CudaProvider.Unavailable is { } reason)
            log($"ImageEmbedder: the CUDA execution provider is not available ({reason}); running on the CPU.");
        else if (options.UseCuda)
        {
            try
            {
                sessionOptions.AppendExecutionProvider_CUDA(options.CudaDeviceId);
                ExecutionProvider = "CUDA";
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                log($"ImageEmbedder: the CUDA execution provider is not available ({FirstLine(e.Message)}); running on the CPU.");
            }
        }
        try
        {
            session = new InferenceSession(onnxPath, sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{onnxPath}: not a loadable ONNX model ({FirstLine(e.Message)}).", e);
        }
        if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count != 1)
            throw new InvalidDataException($"{onnxPath}: expected one input and one output, found {session.InputMetadata.Count} and {session.OutputMetadata.Count}.");
        (inputName, var input) = session.InputMetadata.Single();
        (outputName, var output) = session.OutputMetadata.Single();
        inputDims = input.Dimensions;
        if (inputDims.Length != 4 || inputDims[1..].Any(d => d <= 0) || output.Dimensions.Length != 2 || output.Dimensions[1] <= 0)
            throw new InvalidDataException($"{onnxPath}: expected input [N, C, H, W] and output [N, D] with C, H, W, D fixed; found [{string.Join(", ", inputDims)}] and [{string.Join(", ", output.Dimensions)}].");
        Dimension = output.Dimensions[1];
        log($"ImageEmbedder: running {Path.GetFileName(onnxPath)} on the {ExecutionProvider} execution provider.");
    }

    /// <summary>"CPU" or "CUDA": the provider this embedder runs on.</summary>
    public string ExecutionProvider { get; }

    /// <summary>The embedding dimension D.</summary>
    public int Dimension { get; }

    /// <summary>The image shape the encoder takes: channels, height, width.</summary>
    public (int Channels, int Height, int Width) InputShape => (inputDims[1], inputDims[2], inputDims[3]);

    /// <summary>Embeddings of every image of <paramref name="data"/>, which must have the encoder's C, H and W.</summary>
    public Embeddings Embed(ImageStore data)
    {
        if (data.Channels != inputDims[1] || data.Height != inputDims[2] || data.Width != inputDims[3])
            throw new ArgumentException($"The encoder takes {inputDims[1]}×{inputDims[2]}×{inputDims[3]} images; these are {data.Channels}×{data.Height}×{data.Width}.");
        var values = Embeddings.Allocate(data.Count, Dimension, "Embeddings");
        var size = data.ImageSize;
        var batch = new float[options.BatchSize * size];
        using var runOptions = new RunOptions();
        for (var start = 0; start < data.Count; start += options.BatchSize)
        {
            var rows = Math.Min(options.BatchSize, data.Count - start);
            var pixels = data.Images(start, rows);
            for (var i = 0; i < pixels.Length; i++) batch[i] = pixels[i];
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.AsMemory(0, rows * size),
                [rows, inputDims[1], inputDims[2], inputDims[3]]);
            using var outputs = session.Run(runOptions, [inputName], [input], [outputName]);
            outputs[0].GetTensorDataAsSpan<float>().CopyTo(values.AsSpan(start * Dimension, rows * Dimension));
        }
        return new Embeddings(values, data.Count, Dimension, data.Labels);
    }

    /// <summary>
    /// The model's output [rows, D] for <paramref name="inputs"/> already in its input's units and shape ([rows, C, H, W]
    /// flattened): what a distillation teacher needs (views, not stored images). Runs in batches of the options' size.
    /// </summary>
    public float[] Run(ReadOnlyMemory<float> inputs, int rows)
    {
        var size = inputDims[1] * inputDims[2] * inputDims[3];
        if (inputs.Length != (long)rows * size)
            throw new ArgumentException($"{rows} inputs of {inputDims[1]}×{inputDims[2]}×{inputDims[3]} are {(long)rows * size} values; got {inputs.Length}.", nameof(inputs));
        var values = new float[rows * Dimension];
        using var runOptions = new RunOptions();
        for (var start = 0; start < rows; start += options.BatchSize)
        {
            var count = Math.Min(options.BatchSize, rows - start);
            // ONNX Runtime reads the memory in place; the copy keeps the caller's buffer free of pinning rules.
            var batch = inputs.Slice(start * size, count * size).ToArray();
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.AsMemory(),
                [count, inputDims[1], inputDims[2], inputDims[3]]);
            using var outputs = session.Run(runOptions, [inputName], [input], [outputName]);
            outputs[0].GetTensorDataAsSpan<float>().CopyTo(values.AsSpan(start * Dimension, count * Dimension));
        }
        return values;
    }

    /// <summary>The ONNX model's producer (e.g. "MLNet.Contrastive" for this project's exports), as its file records it.</summary>
    public string Producer => session.ModelMetadata.ProducerName;

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => session.Dispose();

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();
}
