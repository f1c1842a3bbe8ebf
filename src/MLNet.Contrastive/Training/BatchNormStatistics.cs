using MLNet.Contrastive.Data;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// Re-estimates the running mean and variance of every batch-norm layer on the user's images: weights learned on another
/// domain (ImageNet's) keep that domain's statistics, which shift every activation on the new images. With the module in
/// training mode and no gradients, each layer's running statistics become the plain average of its statistics over
/// the batches (AdaBN, Li et al. 2016; "precise BN", Wu and Johnson 2021) — the weights themselves do not change.
/// </summary>
public static class BatchNormStatistics
{
    /// <summary>Images averaged over by default: enough for stable per-channel statistics, a few seconds at 96 px.</summary>
    public const int DefaultImages = 2048;

    /// <summary>Images per batch: the statistics of each batch are averaged, so this is the batch size the layers see.</summary>
    public const int DefaultBatch = 128;

    /// <summary>
    /// Re-estimates <paramref name="module"/>'s batch-norm statistics on up to <paramref name="images"/> images of
    /// <paramref name="data"/> ([B, C, H, W] batches of <paramref name="batchSize"/>, unaugmented, a seeded sample when
    /// there are more), through <paramref name="forward"/> (default: the module itself). Returns the number of
    /// batch-norm layers updated (0: nothing to do, e.g. a ViT). The module's training mode is restored.
    /// </summary>
    public static int Reestimate(nn.Module<Tensor, Tensor> module, ImageStore data, int images = DefaultImages, int batchSize = DefaultBatch,
        int seed = 0, Func<Tensor, Tensor>? forward = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(data);
        if (images <= 0) throw new ArgumentOutOfRangeException(nameof(images), images, "The number of images must be positive.");
        if (batchSize < 2) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch statistics need at least 2 images per batch.");
        if (data.Count < 2) throw new ArgumentException($"Re-estimating batch-norm statistics needs at least 2 images; the data has {data.Count}.", nameof(data));
        TorchRuntime.Initialize();
        var layers = module.modules().OfType<BatchNorm>().Where(layer => layer.running_mean is not null).ToList();
        if (layers.Count == 0) return 0;

        var order = Pretrainer.Permutation(data.Count, seed, -1).Take(Math.Min(images, data.Count)).ToArray();
        // A last batch of one image has no variance; it joins the batch before it.
        var starts = Enumerable.Range(0, (order.Length + batchSize - 1) / batchSize).Select(b => b * batchSize).ToList();
        if (starts.Count > 1 && order.Length - starts[^1] < 2) starts.RemoveAt(starts.Count - 1);
        var momenta = layers.Select(layer => layer.momentum).ToList();
        var wasTraining = module.training;
        var device = module.parameters().FirstOrDefault()?.device ?? CPU;
        try
        {
            module.train();
            using var noGrad = no_grad();
            for (var b = 0; b < starts.Count; b++)
            {
                // Momentum 1/(b+1) makes the running value the plain average of the b+1 batches seen so far.
                foreach (var layer in layers) layer.momentum = 1.0 / (b + 1);
                var end = b + 1 < starts.Count ? starts[b + 1] : order.Length;
                using var pause = CollectionPause.Begin();
                using var scope = NewDisposeScope();
                using var batch = data.Batch(order[starts[b]..end], device);
                using var output = forward is null ? module.call(batch) : forward(batch);
            }
        }
        finally
        {
            for (var i = 0; i < layers.Count; i++) layers[i].momentum = momenta[i];
            module.train(wasTraining);
        }
        return layers.Count;
    }
}
