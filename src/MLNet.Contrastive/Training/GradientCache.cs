using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// Gradient caching (Gao et al. 2021, GradCache): the gradient of a batch-coupled loss with the activations of one
/// chunk of views in memory at a time. The views are drawn once; each chunk is embedded without a graph; the loss and
/// its gradient with respect to the embeddings come from the whole batch (from the method without a graph when it
/// can, <see cref="IEmbeddingObjective.ObjectiveWithGradient"/>, else by autograd); then each chunk is embedded again
/// with a graph and back-propagates its rows of that gradient, which accumulates every parameter's full-batch gradient.
/// Each pass through the encoder holds one view of a chunk's images (chunkImages rows), in both passes alike. Batch norm
/// normalises each such pass by its own statistics (as data-parallel training without synchronised batch norm does);
/// the running statistics move once per pass, in the first, and the second leaves them as it found them. In eval mode,
/// or without batch norm, the gradient equals the whole batch's.
/// </summary>
internal static class GradientCache
{
    /// <summary>The batch's loss (a scalar) and the backward pass that accumulates the parameters' gradients.</summary>
    /// <param name="method">The method, an <see cref="IEmbeddingObjective"/>.</param>
    /// <param name="images">The batch [B, C, H, W].</param>
    /// <param name="context">The step.</param>
    /// <param name="chunkImages">Images per chunk; their V views pass through the encoder one view (chunkImages rows) at a time.</param>
    /// <param name="ranks">Data-parallel ranks whose embeddings the objective takes too (<see cref="GlobalBatch"/>); null: this process's batch alone.</param>
    public static (Tensor Loss, Action Backward) Loss(PretrainingMethod method, Tensor images, StepContext context, int chunkImages, IDataParallel? ranks = null)
    {
        var objective = (IEmbeddingObjective)method;
        var views = objective.Views(images, context);
        // Views are V rows per image, view by view (SimCLR's first views of the batch, then its second; CLIP's one packed
        // row per pair): a pass of chunkImages rows holds one view of chunkImages images, and a chunk's V views go through
        // the encoder one at a time, so a pass with a graph keeps the activations of chunkImages views, not V times as many.
        var rowsPerChunk = chunkImages;
        var chunks = views.split(rowsPerChunk);
        Tensor embeddings;
        using (no_grad())
            embeddings = cat(chunks.Select(chunk => Embed(objective, chunk)).ToArray());
        context.Mark("encoder");
        if (ranks is not null) embeddings = GlobalBatch.Gather(embeddings, images.shape[0], ranks, live: false);
        var statistics = RunningStatistics(method);
        Tensor loss;
        Func<Tensor> embeddingGradient;
        if (objective.ObjectiveWithGradient(embeddings, context) is ({ } value, { } gradient))
            (loss, embeddingGradient) = (value, () => gradient);
        else
        {
            embeddings.requires_grad_(true);
            loss = objective.Objective(embeddings, context);
            embeddingGradient = () =>
            {
                loss.backward();
                return embeddings.grad!;
            };
        }
        return (loss, () =>
        {
            var gradient = embeddingGradient();
            var gradients = (ranks is null ? gradient : GlobalBatch.LocalRows(gradient, images.shape[0], ranks)).split(rowsPerChunk);
            // The first pass's and the loss's freed blocks go back to the system before the passes with a graph.
            NativeHeap.Trim();
            // Each pass frees its graph, but malloc keeps the holes it leaves: over the 16 passes of a ResNet-50 step at
            // 224 px resident memory climbed by gigabytes (docs/backbones.md). Trimming whenever it has grown by TrimSlack
            // since the last trim bounds the climb.
            var resident = NativeHeap.ResidentBytes();
            for (var i = 0; i < chunks.Length; i++)
            {
                using (NewDisposeScope())
                    Embed(objective, chunks[i]).backward([gradients[i]]);
                if (NativeHeap.ResidentBytes() > resident + TrimSlack)
                {
                    NativeHeap.Trim();
                    resident = NativeHeap.ResidentBytes();
                }
            }
            using var noGrad = no_grad();
            foreach (var (current, saved) in statistics) current.copy_(saved);
        });
    }

    /// <summary>Growth of resident memory over the passes with a graph after which malloc's free pages go back: 256 MiB.</summary>
    internal const long TrimSlack = 256L << 20;

    private static Tensor Embed(IEmbeddingObjective objective, Tensor chunk)
    {
        using var scope = NewDisposeScope();
        return objective.Embed(chunk).MoveToOuterDisposeScope();
    }

    /// <summary>Each batch norm's running mean, variance and count, with a copy to put back.</summary>
    private static List<(Tensor Current, Tensor Saved)> RunningStatistics(nn.Module module) =>
        module.named_buffers()
            .Where(b => b.name.EndsWith("running_mean", StringComparison.Ordinal) || b.name.EndsWith("running_var", StringComparison.Ordinal)
                        || b.name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
            .Select(b => (b.buffer, b.buffer.clone()))
            .ToList();
}
