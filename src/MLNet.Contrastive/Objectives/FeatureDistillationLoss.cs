using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>How a student's features are compared with a teacher's.</summary>
public enum DistillationLossKind
{
    /// <summary>Mean squared error of the raw features (LightlyTrain's distillation v2, <c>DistillationV2Loss</c>).</summary>
    Mse,

    /// <summary>1 − the mean cosine similarity of each feature vector with the teacher's (scale-free).</summary>
    Cosine,
}

/// <summary>Feature distillation: a student's (projected) features against a frozen teacher's.</summary>
public static class FeatureDistillationLoss
{
    /// <summary>
    /// student and teacher [N, …, D] of the same shape (global features [N, D], or spatial tokens [N, T, D]); the teacher
    /// is treated as a constant. <see cref="DistillationLossKind.Mse"/>: mean over every element of (s − t)²;
    /// <see cref="DistillationLossKind.Cosine"/>: 1 − mean over the vectors of the last dimension of cos(s, t). Returns a scalar.
    /// </summary>
    public static Tensor Compute(Tensor student, Tensor teacher, DistillationLossKind kind = DistillationLossKind.Mse)
    {
        if (student.ndim < 2 || !student.shape.SequenceEqual(teacher.shape))
            throw new ArgumentException($"student and teacher must have the same shape [N, …, D]; got [{string.Join(", ", student.shape)}] and [{string.Join(", ", teacher.shape)}].");
        using var scope = NewDisposeScope();
        var target = teacher.detach();
        // Held in a local: a Scalar must outlive the native call that reads it.
        using var one = 1.ToScalar();
        var loss = kind switch
        {
            DistillationLossKind.Mse => F.mse_loss(student, target),
            DistillationLossKind.Cosine => F.cosine_similarity(student, target, dim: -1).mean().neg().add_(one),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "The distillation losses are Mse and Cosine."),
        };
        return loss.MoveToOuterDisposeScope();
    }
}
