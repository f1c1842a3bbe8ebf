using MLNet.Contrastive.Objectives;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class IjepaLossTests
{
    // Two blocks of two tokens of width 3; the expected value from ijepa_loss_reference.py next to this file.
    private static Tensor Target() => tensor(new[] { 1.0f, 2.0f, 4.0f, 0.5f, -0.5f, 0.0f, 3.0f, 3.0f, 0.0f, -2.0f, 1.0f, 2.5f }).view(2, 2, 3);
    private static Tensor Prediction() => tensor(new[] { -1.0f, 0.2f, 1.5f, 1.0f, -1.0f, 0.3f, 0.7f, 0.5f, -2.0f, 0.0f, 0.1f, 1.0f }).view(2, 2, 3);

    [Test]
    public void LossMatchesAHandComputation() =>
        Assert.That(IjepaLoss.Compute(Prediction(), Target()).item<float>(), Is.EqualTo(0.10551367513627384).Within(1e-6));

    [Test]
    public void TargetsAreLayerNormedSoTheirScaleAndShiftDoNotCount() =>
        Assert.That(IjepaLoss.Compute(Prediction(), Target() * 7 + 3).item<float>(), Is.EqualTo(0.10551367513627384).Within(1e-5));

    [Test]
    public void OnlyThePredictionTakesAGradient()
    {
        var prediction = Prediction().requires_grad_();
        var target = Target().requires_grad_();
        IjepaLoss.Compute(prediction, target).backward();
        Assert.That(prediction.grad, Is.Not.Null);
        Assert.That(target.grad, Is.Null);
    }

    [Test]
    public void BadShapesAreNamed() =>
        Assert.That(() => IjepaLoss.Compute(Prediction(), Target().narrow(1, 0, 1)), Throws.ArgumentException.With.Message.Contains("[B, T, D]"));
}
