using MLNet.Contrastive.Objectives;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class DinoLossTests
{
    // Two global crops (teacher) and three crops (student) of B = 2 images over K = 3 prototypes; expected values
    // from dino_loss_reference.py next to this file.
    private static Tensor[] Teacher() => [tensor(new[,] { { 1.0f, 0.5f, -0.2f }, { 0.3f, -0.4f, 0.8f } }), tensor(new[,] { { 0.2f, 0.9f, -0.1f }, { -0.5f, 0.6f, 0.4f } })];
    private static Tensor[] Student() =>
    [
        tensor(new[,] { { 0.4f, -0.3f, 0.2f }, { 0.1f, 0.7f, -0.6f } }),
        tensor(new[,] { { -0.2f, 0.5f, 0.3f }, { 0.9f, -0.1f, 0.0f } }),
        tensor(new[,] { { 0.6f, 0.1f, -0.4f }, { -0.3f, 0.2f, 0.5f } }),
    ];
    private static Tensor Center() => tensor(new[] { 0.1f, -0.2f, 0.05f }).view(1, 3);

    [Test]
    public void LossAndCentreMatchAHandComputation()
    {
        var (loss, center) = DinoLoss.Compute(Student(), Teacher(), Center(), 0.1, 0.07, 0.9);
        Assert.That(loss.item<float>(), Is.EqualTo(3.909568652797318).Within(1e-4));
        Assert.That(center.data<float>().ToArray(), Is.EqualTo(new[] { 0.115, -0.14, 0.0675 }).Within(1e-6));
    }

    [Test]
    public void MonitorsMatchAHandComputation()
    {
        var (entropy, kl) = DinoLoss.Monitors(Student(), Teacher(), Center(), 0.1, 0.07);
        Assert.That(entropy, Is.EqualTo(0.05661448655610317).Within(1e-5));
        Assert.That(kl, Is.EqualTo(3.8529541662412146).Within(1e-4));
    }

    [Test]
    public void CentreMomentumOneKeepsTheCentreAndZeroTakesTheBatchMean()
    {
        Assert.That(DinoLoss.Compute(Student(), Teacher(), Center(), 0.1, 0.07, 1).Center.data<float>().ToArray(), Is.EqualTo(new[] { 0.1, -0.2, 0.05 }).Within(1e-7));
        // Mean of the four teacher rows.
        Assert.That(DinoLoss.Compute(Student(), Teacher(), Center(), 0.1, 0.07, 0).Center.data<float>().ToArray(), Is.EqualTo(new[] { 0.25, 0.4, 0.225 }).Within(1e-6));
    }

    [Test]
    public void OnlyTheStudentTakesAGradient()
    {
        var student = Student().Select(s => s.requires_grad_()).ToArray();
        var teacher = Teacher().Select(t => t.requires_grad_()).ToArray();
        DinoLoss.Compute(student, teacher, Center(), 0.1, 0.04, 0.9).Loss.backward();
        Assert.That(student.All(s => s.grad is not null && s.grad.abs().sum().item<float>() > 0), Is.True);
        Assert.That(teacher.All(t => t.grad is null), Is.True);
    }

    [Test]
    public void BadShapesAreNamed()
    {
        Assert.That(() => DinoLoss.Compute(Student(), Teacher(), zeros(1, 4), 0.1, 0.07, 0.9), Throws.ArgumentException.With.Message.Contains("centre must be [1, 3]"));
        Assert.That(() => DinoLoss.Compute(Student()[..1], Teacher(), Center(), 0.1, 0.07, 0.9), Throws.ArgumentException.With.Message.Contains("at least 2 crops"));
        Assert.That(() => DinoLoss.Compute(Student(), Teacher(), Center(), 0.1, 0, 0.9), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
