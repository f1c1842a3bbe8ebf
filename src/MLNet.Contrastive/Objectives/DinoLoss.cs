using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// DINO's self-distillation objective (Caron et al. 2021), after facebookresearch/dino <c>main_dino.py</c> (DINOLoss) and
/// lightly's <c>lightly/loss/dino_loss.py</c>: the teacher's outputs are centred (a moving average of their batch mean is
/// subtracted, so no prototype dominates) and sharpened (a low temperature, so the output is not uniform); the student
/// predicts them, by cross-entropy, from every other crop.
/// </summary>
public static class DinoLoss
{
    /// <summary>
    /// The loss and the updated centre. Loss = mean over pairs (teacher crop t, student crop s ≠ t) of
    /// mean_b −Σ_k softmax((T_t − c) / τ_t)_bk · log softmax(S_s / τ_s)_bk. Centre ← m·c + (1 − m)·mean over all teacher rows.
    /// </summary>
    /// <param name="student">The student's outputs of every crop, the global crops first, one [B, K] each.</param>
    /// <param name="teacher">The teacher's outputs of the global crops, one [B, K] each (no gradient); crop i pairs with student crop i.</param>
    /// <param name="center">The centre c [1, K] before this step.</param>
    /// <param name="studentTemperature">τ_s. DINO: 0.1.</param>
    /// <param name="teacherTemperature">τ_t. DINO: 0.04 warmed up to 0.07.</param>
    /// <param name="centerMomentum">m. DINO: 0.9.</param>
    /// <returns>The loss (a scalar) and the new centre [1, K] (no gradient).</returns>
    public static (Tensor Loss, Tensor Center) Compute(IReadOnlyList<Tensor> student, IReadOnlyList<Tensor> teacher, Tensor center,
        double studentTemperature, double teacherTemperature, double centerMomentum)
    {
        Check(student, teacher, center, studentTemperature, teacherTemperature);
        if (!(centerMomentum >= 0 && centerMomentum <= 1)) throw new ArgumentOutOfRangeException(nameof(centerMomentum), centerMomentum, "The centre momentum must be in [0, 1].");
        using var scope = NewDisposeScope();
        var targets = TeacherProbabilities(teacher, center, teacherTemperature);
        var total = zeros(1, dtype: student[0].dtype, device: student[0].device).squeeze();
        var pairs = 0;
        for (var t = 0; t < teacher.Count; t++)
            for (var s = 0; s < student.Count; s++)
            {
                if (s == t) continue;
                total += -(targets[t] * F.log_softmax(student[s] / studentTemperature, dim: 1)).sum(1).mean();
                pairs++;
            }
        Tensor updated;
        using (no_grad()) updated = center * centerMomentum + cat(teacher.ToArray(), 0).detach().mean([0], keepdim: true) * (1 - centerMomentum);
        return ((total / pairs).MoveToOuterDisposeScope(), updated.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The collapse monitors of DINO's §5.3: the mean entropy of the teacher's centred, sharpened output (0 when it
    /// collapses to one prototype, log K when to the uniform distribution), and the mean KL divergence from it to the
    /// student's prediction over the same pairs as <see cref="Compute"/> (0 when the two have collapsed together).
    /// Arguments as <see cref="Compute"/>'s; no gradient.
    /// </summary>
    public static (double TeacherEntropy, double KlDivergence) Monitors(IReadOnlyList<Tensor> student, IReadOnlyList<Tensor> teacher, Tensor center,
        double studentTemperature, double teacherTemperature)
    {
        Check(student, teacher, center, studentTemperature, teacherTemperature);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var targets = TeacherProbabilities(teacher, center, teacherTemperature);
        var entropies = targets.Select(p => -(p * p.clamp_min(1e-12).log()).sum(1).mean()).ToList();
        double kl = 0;
        var pairs = 0;
        for (var t = 0; t < teacher.Count; t++)
            for (var s = 0; s < student.Count; s++)
            {
                if (s == t) continue;
                // KL(p_t ‖ p_s) = cross-entropy − entropy of p_t.
                kl += (-(targets[t] * F.log_softmax(student[s].detach() / studentTemperature, dim: 1)).sum(1).mean() - entropies[t]).item<float>();
                pairs++;
            }
        return (entropies.Average(e => e.item<float>()), kl / pairs);
    }

    private static List<Tensor> TeacherProbabilities(IReadOnlyList<Tensor> teacher, Tensor center, double temperature) =>
        teacher.Select(t => F.softmax((t.detach() - center) / temperature, dim: 1)).ToList();

    private static void Check(IReadOnlyList<Tensor> student, IReadOnlyList<Tensor> teacher, Tensor center, double studentTemperature, double teacherTemperature)
    {
        if (teacher.Count < 1 || student.Count < 2 || teacher.Count > student.Count)
            throw new ArgumentException($"DINO's loss needs teacher outputs of 1 or more global crops and student outputs of at least 2 crops; got {teacher.Count} and {student.Count}.");
        foreach (var s in student) ShapeCheck.SamePairs(teacher[0], s, nameof(teacher), nameof(student));
        foreach (var t in teacher) ShapeCheck.SamePairs(teacher[0], t, nameof(teacher), nameof(teacher));
        if (center.ndim != 2 || center.shape[0] != 1 || center.shape[1] != teacher[0].shape[1])
            throw new ArgumentException($"The centre must be [1, {teacher[0].shape[1]}]; got [{string.Join(", ", center.shape)}].", nameof(center));
        if (!(studentTemperature > 0)) throw new ArgumentOutOfRangeException(nameof(studentTemperature), studentTemperature, "The student temperature must be positive.");
        if (!(teacherTemperature > 0)) throw new ArgumentOutOfRangeException(nameof(teacherTemperature), teacherTemperature, "The teacher temperature must be positive.");
    }
}
