using MLNet.Contrastive.Objectives;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class IbotPatchLossTests
{
    // B = 2 images of L = 3 patches, K = 3 prototypes; image 0 hides patches 0 and 2, image 1 patch 1. Expected values
    // from ibot_patch_loss_reference.py next to this file.
    private static Tensor Mask() => tensor(new[,] { { 1f, 0f, 1f }, { 0f, 1f, 0f } });
    private static Tensor Teacher() => tensor(new[,] { { 1.0f, 0.5f, -0.2f }, { 0.3f, -0.4f, 0.8f }, { -0.5f, 0.6f, 0.4f } });
    private static Tensor Student() => tensor(new[,] { { 0.4f, -0.3f, 0.2f }, { 0.1f, 0.7f, -0.6f }, { 0.9f, -0.1f, 0.0f } });
    private static Tensor Center() => tensor(new[] { 0.1f, -0.2f, 0.05f }).view(1, 3);

    [Test]
    public void LossAndCentreMatchAHandComputation()
    {
        var (loss, center) = IbotPatchLoss.Compute(Student(), Teacher(), Mask(), Center(), 0.1, 0.07, 0.9);
        Assert.That(loss.item<float>(), Is.EqualTo(8.376197662342063).Within(1e-4));
        Assert.That(center.data<float>().ToArray(), Is.EqualTo(new[] { 0.11666666666666667, -0.1566666666666667, 0.07833333333333334 }).Within(1e-6));
        // A boolean mask reads the same.
        Assert.That(IbotPatchLoss.Compute(Student(), Teacher(), Mask().to_type(ScalarType.Bool), Center(), 0.1, 0.07, 0.9).Loss.item<float>(),
            Is.EqualTo(8.376197662342063).Within(1e-4));
    }

    /// <summary>Each image counts the same: image 1's single patch weighs as much as image 0's two together.</summary>
    [Test]
    public void EveryImageWeighsTheSame()
    {
        var rows = Enumerable.Range(0, 3).Select(i => IbotPatchLoss.Compute(Student()[i..(i + 1)], Teacher()[i..(i + 1)], tensor(new[,] { { 1f } }), Center(), 0.1, 0.07, 0.9).Loss.item<float>()).ToArray();
        var expected = ((rows[0] + rows[1]) / 2 + rows[2]) / 2;
        Assert.That(IbotPatchLoss.Compute(Student(), Teacher(), Mask(), Center(), 0.1, 0.07, 0.9).Loss.item<float>(), Is.EqualTo(expected).Within(1e-4));
    }

    [Test]
    public void OnlyTheStudentTakesAGradient()
    {
        var student = Student().requires_grad_();
        var teacher = Teacher().requires_grad_();
        IbotPatchLoss.Compute(student, teacher, Mask(), Center(), 0.1, 0.04, 0.9).Loss.backward();
        Assert.That(student.grad is not null && student.grad.abs().sum().item<float>() > 0, Is.True);
        Assert.That(teacher.grad, Is.Null);
    }

    [Test]
    public void BadInputsAreNamed()
    {
        Assert.That(() => IbotPatchLoss.Compute(Student(), Teacher(), Mask(), zeros(1, 4), 0.1, 0.07, 0.9), Throws.ArgumentException.With.Message.Contains("centre must be [1, 3]"));
        Assert.That(() => IbotPatchLoss.Compute(Student(), Teacher(), ones(2, 3), Center(), 0.1, 0.07, 0.9), Throws.ArgumentException.With.Message.Contains("sets 6 patches"));
        Assert.That(() => IbotPatchLoss.Compute(Student()[..2], Teacher(), Mask(), Center(), 0.1, 0.07, 0.9), Throws.ArgumentException.With.Message.Contains("[N, D]"));
        Assert.That(() => IbotPatchLoss.Compute(Student(), Teacher(), Mask(), Center(), 0.1, 0, 0.9), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
