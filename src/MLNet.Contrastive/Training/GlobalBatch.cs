using MLNet.Contrastive.Methods;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// The exact global batch of a loss that couples the batch through its embeddings (<see cref="IEmbeddingObjective"/>
/// with <see cref="IEmbeddingObjective.ExactAcrossRanks"/>) over data-parallel ranks, as SimCLR's and solo-learn's
/// gather layers give it: every rank gathers all ranks' embeddings, in the order one process at the whole batch would
/// hold them, and computes the whole objective, its own rows with their graph. Its own rows' gradient is then the
/// global loss's (every term they enter, other ranks' anchors included), scaled by the number of ranks so that the
/// average of the ranks' parameter gradients is the global batch's; parameters the objective itself uses (CLIP's
/// temperature) get the global gradient on every rank already.
/// </summary>
internal static class GlobalBatch
{
    /// <summary>The ranks whose embeddings <paramref name="method"/>'s loss takes in a run of <paramref name="options"/>; null: its own slice only.</summary>
    public static IDataParallel? RanksFor(PretrainOptions options, PretrainingMethod method) =>
        options.DataParallel is { WorldSize: > 1 } ranks && method is IEmbeddingObjective { ExactAcrossRanks: true } ? ranks : null;

    /// <summary>The objective of the global batch; <paramref name="images"/> [b, C, H, W] are this rank's slice of it.</summary>
    public static Tensor Loss(IEmbeddingObjective method, Tensor images, StepContext context, IDataParallel ranks)
    {
        using var scope = NewDisposeScope();
        var local = method.Embed(method.Views(images, context));
        context.Mark("encoder");
        return method.Objective(Gather(local, images.shape[0], ranks), context).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// All ranks' embeddings [V·N·b, P] from this rank's <paramref name="local"/> [V·b, P] (V rows per image, view by view):
    /// view by view, rank by rank — one process's order, whose batch is the ranks' slices in rank order. This rank's rows
    /// are <paramref name="local"/> itself, their gradient scaled by N; with <paramref name="live"/> false none has a graph.
    /// </summary>
    public static Tensor Gather(Tensor local, long images, IDataParallel ranks, bool live = true)
    {
        var (n, rank) = (ranks.WorldSize, ranks.Rank);
        var views = local.shape[0] / images;
        var all = ranks.AllGather(local);
        var pieces = new List<Tensor>();
        for (var v = 0; v < views; v++)
            for (var r = 0; r < n; r++)
                pieces.Add(r == rank && live
                    ? ScaledGradient.apply(local.narrow(0, v * images, images), (double)n)
                    : all.narrow(0, (r * views + v) * images, images));
        return cat(pieces);
    }

    /// <summary>This rank's rows [V·b, P] of a global [V·N·b, P] tensor in <see cref="Gather"/>'s order, times N.</summary>
    public static Tensor LocalRows(Tensor global, long images, IDataParallel ranks)
    {
        var (n, rank) = (ranks.WorldSize, ranks.Rank);
        var views = global.shape[0] / (images * n);
        return cat(Enumerable.Range(0, (int)views).Select(v => global.narrow(0, (v * n + rank) * images, images)).ToArray()).mul(n);
    }

    /// <summary>The identity, whose gradient is its output's times a factor.</summary>
    private sealed class ScaledGradient : autograd.SingleTensorFunction<ScaledGradient>
    {
        public override string Name => nameof(ScaledGradient);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            ctx.save_data("factor", vars[1]);
            return ((Tensor)vars[0]).detach().clone();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradient) => [gradient.mul((double)ctx.get_data("factor")), null!]; // none for the factor
    }
}
