using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// NNCLR's objective (Dwibedi et al. 2021): each view's projection is replaced by its nearest neighbour in a support set
/// of earlier projections, and that neighbour is the positive of the other view's prediction in NT-Xent, symmetrised over
/// the two views. Follows lightly's <c>lightly/models/modules/nn_memory_bank.py</c> (cosine nearest neighbour) and
/// <c>examples/pytorch/nnclr.py</c> (loss = ½·(NT-Xent(NN(z1), p2) + NT-Xent(NN(z2), p1)), no gradient through the
/// neighbours).
/// </summary>
public static class NnclrLoss
{
    /// <summary>Default temperature τ (the paper's 0.1).</summary>
    public const double DefaultTemperature = 0.1;

    /// <summary>
    /// For each row of <paramref name="queries"/> [N, D], the row of <paramref name="support"/> [K, D] (K ≥ 1) with the
    /// highest cosine similarity, [N, D], as stored (not normalised), without gradient.
    /// </summary>
    public static Tensor NearestNeighbours(Tensor queries, Tensor support)
    {
        if (queries.ndim != 2 || support.ndim != 2 || queries.shape[1] != support.shape[1] || support.shape[0] < 1)
            throw new ArgumentException($"queries must be [N, D] and support [K ≥ 1, D]; got [{string.Join(", ", queries.shape)}] and [{string.Join(", ", support.shape)}].");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var rows = support.to(queries.device);
        var nearest = F.normalize(queries.detach(), dim: 1).mm(F.normalize(rows, dim: 1).t()).argmax(1);
        return rows.index_select(0, nearest).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// z1, z2: [N, P] the projections of the two views of N images; p1, p2: [N, P] their predictions; support [K, P].
    /// ½·(NT-Xent(NN(z1), p2) + NT-Xent(NN(z2), p1)) with NN from <see cref="NearestNeighbours"/>; the gradient reaches
    /// only p1 and p2. Returns a scalar.
    /// </summary>
    public static Tensor Compute(Tensor z1, Tensor z2, Tensor p1, Tensor p2, Tensor support, double temperature = DefaultTemperature)
    {
        ShapeCheck.SamePairs(z1, z2, nameof(z1), nameof(z2), minimumRows: 2);
        ShapeCheck.SamePairs(p1, p2, nameof(p1), nameof(p2), minimumRows: 2);
        ShapeCheck.SamePairs(z1, p1, nameof(z1), nameof(p1), minimumRows: 2);
        using var scope = NewDisposeScope();
        var loss = (NtXentLoss.Compute(NearestNeighbours(z1, support), p2, temperature) + NtXentLoss.Compute(NearestNeighbours(z2, support), p1, temperature)) / 2;
        return loss.MoveToOuterDisposeScope();
    }
}
