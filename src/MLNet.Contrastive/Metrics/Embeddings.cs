using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Metrics;

/// <summary>N feature vectors of dimension D, row-major, with the images' labels when known.</summary>
public sealed class Embeddings
{
    /// <summary>Wraps <paramref name="values"/>, <paramref name="count"/> rows of <paramref name="dimension"/> values, row-major; <paramref name="labels"/> are class indices or null.</summary>
    public Embeddings(float[] values, int count, int dimension, int[]? labels)
    {
        if (values.Length != (long)count * dimension) throw new ArgumentException($"Expected {count}×{dimension} values, got {values.Length}.");
        Values = values;
        Count = count;
        Dimension = dimension;
        Labels = labels;
    }

    /// <summary>All values, row-major: [N · D].</summary>
    public float[] Values { get; }
    /// <summary>N, the number of rows.</summary>
    public int Count { get; }
    /// <summary>D, the values per row.</summary>
    public int Dimension { get; }
    /// <summary>The class index of each row, or null when unlabelled.</summary>
    public int[]? Labels { get; }

    /// <summary>Row <paramref name="i"/>, [D].</summary>
    public ReadOnlySpan<float> Row(int i) => Values.AsSpan(i * Dimension, Dimension);

    /// <summary>
    /// The encoder's embedding (<see cref="ImageEncoder.Embed"/>, [N, E]) of every image: eval mode, no gradients, in batches of <paramref name="batchSize"/>
    /// (default: 512 images, fewer for large images — see <see cref="DefaultBatch"/>);
    /// <paramref name="views"/>, when given, transforms each batch [B, C, H, W] first (e.g. a random augmentation).
    /// </summary>
    public static Embeddings FromEncoder(ImageEncoder encoder, ImageStore data, int? batchSize = null, Func<Tensor, Tensor>? views = null) =>
        FromModule(encoder, batch => encoder.Embed(views is null ? batch : views(batch)), encoder.EmbeddingDimension, data, batchSize);

    /// <summary>
    /// Images per evaluation batch: 512, or as many as 16 M input values (2²⁴ bytes of 8-bit pixels) hold, at least 8 —
    /// 111 at 224 × 224 RGB, where a batch of 512 through a ResNet-50 kept several gigabytes of activations alive at once.
    /// </summary>
    internal static int DefaultBatch(ImageStore data) => Math.Clamp((1 << 24) / Math.Max(1, data.ImageSize), 8, 512);

    /// <summary>
    /// <paramref name="forward"/>'s output [B, <paramref name="dimension"/>] for every batch of images [B, C, H, W] in [0, 1],
    /// with <paramref name="module"/> in eval mode, no gradients, in batches of <paramref name="batchSize"/>.
    /// </summary>
    internal static Embeddings FromModule(nn.Module module, Func<Tensor, Tensor> forward, int dimension, ImageStore data, int? batchSize = null)
    {
        var batch = batchSize ?? DefaultBatch(data);
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batch, "The batch size must be positive.");
        TorchRuntime.Initialize();
        var values = Allocate(data.Count, dimension, "Features");
        var device = module.parameters().First().device;
        module.eval();
        using var noGrad = no_grad();
        for (var start = 0; start < data.Count; start += batch)
        {
            using var pause = CollectionPause.Begin();
            using var scope = NewDisposeScope();
            var indices = Enumerable.Range(start, Math.Min(batch, data.Count - start)).ToArray();
            forward(data.Batch(indices, device)).cpu().data<float>().CopyTo(values, start * dimension);
        }
        return new Embeddings(values, data.Count, dimension, data.Labels);
    }

    /// <summary>Room for <paramref name="count"/> rows of <paramref name="dimension"/> values, or a clear error where one .NET array cannot hold them.</summary>
    internal static float[] Allocate(int count, int dimension, string what)
    {
        var values = (long)count * dimension;
        if (values > Array.MaxLength)
            throw new InvalidOperationException($"{what} of {count:N0} images are {values:N0} values ({dimension:N0} each), more than one .NET array holds " +
                                                $"({Array.MaxLength:N0}); use fewer images or a smaller image size.");
        return new float[values];
    }

    /// <summary>Raw pixels scaled to [0, 1] as features (the baseline every encoder must beat).</summary>
    public static Embeddings FromPixels(ImageStore data)
    {
        var values = Allocate(data.Count, data.ImageSize, "Raw-pixel features");
        for (var i = 0; i < data.Count; i++)
        {
            var image = data.Image(i);
            for (var p = 0; p < image.Length; p++) values[(long)i * data.ImageSize + p] = image[p] / 255f;
        }
        return new Embeddings(values, data.Count, data.ImageSize, data.Labels);
    }

    /// <summary>An IDataView of the rows: a float-vector column [D] named <paramref name="featureColumnName"/> and a text label column.</summary>
    internal IDataView ToDataView(MLContext mlContext, string featureColumnName) =>
        ToDataView(mlContext, Enumerable.Range(0, Count).Select(i => Row(i).ToArray()).ToList(), Enumerable.Repeat("", Count).ToList(), featureColumnName, "Label");

    /// <summary>An IDataView with a float-vector column [D] of <paramref name="features"/> and a text column of <paramref name="labels"/>.</summary>
    internal static IDataView ToDataView(MLContext mlContext, IReadOnlyList<float[]> features, IReadOnlyList<string> labels, string featureColumnName, string labelColumnName)
    {
        var dimension = features.Count == 0 ? 0 : features[0].Length;
        var schema = SchemaDefinition.Create(typeof(FeatureRow));
        schema[nameof(FeatureRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dimension);
        schema[nameof(FeatureRow.Features)].ColumnName = featureColumnName;
        schema[nameof(FeatureRow.Label)].ColumnName = labelColumnName;
        return mlContext.Data.LoadFromEnumerable(features.Select((f, i) => new FeatureRow { Features = f, Label = labels[i] }), schema);
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }
}
