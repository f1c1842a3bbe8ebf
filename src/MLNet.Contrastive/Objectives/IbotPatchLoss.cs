using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// iBOT's masked-patch self-distillation (Zhou et al. 2022), after lightly's <c>lightly/loss/ibot_loss.py</c>
/// (IBOTPatchLoss, itself after DINOv2's <c>ibot_patch_loss.py</c>): on each masked patch the student, which saw a mask
/// token there, predicts the teacher's centred, sharpened softmax of the same patch of the unmasked view. Each patch's
/// cross-entropy is weighted by 1 / (its image's masked patches), so every image counts the same however many patches
/// it hid, then summed and divided by the images.
/// </summary>
public static class IbotPatchLoss
{
    /// <summary>
    /// The loss and the updated patch centre. Loss = (1/B) Σ_b (1/M_b) Σ_{masked p of b} −Σ_k softmax((T_p − c) / τ_t)_k ·
    /// log softmax(S_p / τ_s)_k, with M_b the masked patches of image b (at least 1). Centre ← m·c + (1 − m)·mean of the
    /// teacher's masked rows (lightly's <c>Center.update</c> of the masked outputs).
    /// </summary>
    /// <param name="student">The student's outputs of the masked patches, [M, K]: the rows of <paramref name="mask"/>'s set entries in row-major order.</param>
    /// <param name="teacher">The teacher's outputs of the same patches of the unmasked views, [M, K] (no gradient).</param>
    /// <param name="mask">[B, L], 1 (or true) on masked patches; exactly M entries set.</param>
    /// <param name="center">The patch centre c [1, K] before this step.</param>
    /// <param name="studentTemperature">τ_s. iBOT: 0.1.</param>
    /// <param name="teacherTemperature">τ_t. iBOT: 0.04 warmed up to 0.07.</param>
    /// <param name="centerMomentum">m. iBOT: 0.9.</param>
    /// <returns>The loss (a scalar) and the new centre [1, K] (no gradient).</returns>
    public static (Tensor Loss, Tensor Center) Compute(Tensor student, Tensor teacher, Tensor mask, Tensor center,
        double studentTemperature, double teacherTemperature, double centerMomentum)
    {
        ShapeCheck.SamePairs(teacher, student, nameof(teacher), nameof(student));
        if (mask.ndim != 2) throw new ArgumentException($"The mask must be [B, L]; got [{string.Join(", ", mask.shape)}].", nameof(mask));
        if (center.ndim != 2 || center.shape[0] != 1 || center.shape[1] != teacher.shape[1])
            throw new ArgumentException($"The centre must be [1, {teacher.shape[1]}]; got [{string.Join(", ", center.shape)}].", nameof(center));
        if (!(studentTemperature > 0)) throw new ArgumentOutOfRangeException(nameof(studentTemperature), studentTemperature, "The student temperature must be positive.");
        if (!(teacherTemperature > 0)) throw new ArgumentOutOfRangeException(nameof(teacherTemperature), teacherTemperature, "The teacher temperature must be positive.");
        if (!(centerMomentum >= 0 && centerMomentum <= 1)) throw new ArgumentOutOfRangeException(nameof(centerMomentum), centerMomentum, "The centre momentum must be in [0, 1].");
        using var scope = NewDisposeScope();
        var set = mask.to_type(ScalarType.Bool);
        var masked = set.sum().item<long>();
        if (masked != student.shape[0])
            throw new ArgumentException($"The mask sets {masked} patches but the student gives {student.shape[0]} rows; give one row per masked patch.", nameof(mask));
        var targets = F.softmax((teacher.detach() - center) / teacherTemperature, dim: 1);
        var perPatch = -(targets * F.log_softmax(student / studentTemperature, dim: 1)).sum(1);
        // [B, L] → each masked patch's 1 / M_b, in the same row-major order as the rows.
        var perImage = set.sum(1, keepdim: true, type: ScalarType.Float32).clamp_min(1);
        var weight = (1 / perImage).expand(set.shape).masked_select(set).to_type(perPatch.dtype);
        var loss = (perPatch * weight).sum() / mask.shape[0];
        Tensor updated;
        using (no_grad()) updated = center * centerMomentum + teacher.detach().mean([0], keepdim: true) * (1 - centerMomentum);
        return (loss.MoveToOuterDisposeScope(), updated.MoveToOuterDisposeScope());
    }
}
