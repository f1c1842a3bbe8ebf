using MLNet.Contrastive.Objectives;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class MaeLossTests
{
    // A 4×4 one-channel image in 2×2 patches; expected values from mae_loss_reference.py next to this file.
    private static Tensor Image() => tensor(new[] { 0.1f, 0.5f, 0.2f, 0.9f, 0.3f, 0.8f, 0.4f, 0.0f, 0.6f, 0.7f, 1.0f, 0.25f, 0.05f, 0.35f, 0.45f, 0.55f }).view(1, 1, 4, 4);
    private static Tensor Prediction() => tensor(new[] { 0.0f, 0.4f, 0.3f, 0.7f, 0.1f, 1.0f, 0.2f, -0.1f, -1.0f, 0.5f, 1.2f, 0.0f, 0.9f, 0.3f, 0.4f, 0.6f }).view(1, 4, 4);
    private static Tensor Mask() => tensor(new[] { 0f, 1f, 1f, 0f }).view(1, 4);

    [Test]
    public void PatchifyLaysPatchesOutRowByRow()
    {
        var patches = MaeLoss.Patchify(Image(), 2);
        Assert.That(patches.shape, Is.EqualTo(new long[] { 1, 4, 4 }));
        Assert.That(patches.data<float>().ToArray(), Is.EqualTo(new[] { 0.1, 0.5, 0.3, 0.8, 0.2, 0.9, 0.4, 0.0, 0.6, 0.7, 0.05, 0.35, 1.0, 0.25, 0.45, 0.55 }).Within(1e-7));
    }

    [Test]
    public void PatchifyPutsChannelsInnermost()
    {
        // Channel c of pixel value v is v + 100·c: each patch row reads (v, v + 100) pixel by pixel.
        var image = cat([Image(), Image() + 100], 1);
        var first = MaeLoss.Patchify(image, 2)[0, 0].data<float>().ToArray();
        Assert.That(first, Is.EqualTo(new[] { 0.1, 100.1, 0.5, 100.5, 0.3, 100.3, 0.8, 100.8 }).Within(1e-4));
    }

    [Test]
    public void LossOverMaskedPatchesMatchesAHandComputation()
    {
        var target = MaeLoss.Patchify(Image(), 2);
        Assert.That(MaeLoss.Compute(Prediction(), target, Mask()).item<float>(), Is.EqualTo(0.514375).Within(1e-6));
        Assert.That(MaeLoss.Compute(Prediction(), MaeLoss.NormalizePatches(target), Mask()).item<float>(), Is.EqualTo(1.2828200991782839).Within(1e-5));
        Assert.That(MaeLoss.PerImage(Prediction(), target, Mask()).data<float>().ToArray(), Is.EqualTo(new[] { 0.514375 }).Within(1e-6));
    }

    [Test]
    public void VisiblePatchesDoNotCount()
    {
        var target = MaeLoss.Patchify(Image(), 2);
        var changed = Prediction().clone();
        changed[0, 0] = tensor(new[] { 9f, 9f, 9f, 9f });
        changed[0, 3] = tensor(new[] { -9f, 9f, -9f, 9f });
        Assert.That(MaeLoss.Compute(changed, target, Mask()).item<float>(), Is.EqualTo(0.514375).Within(1e-6));
    }

    [Test]
    public void BadShapesAreNamed()
    {
        Assert.That(() => MaeLoss.Patchify(Image(), 3), Throws.ArgumentException.With.Message.Contains("do not split into 3×3 patches"));
        Assert.That(() => MaeLoss.Compute(Prediction(), MaeLoss.Patchify(Image(), 2), ones(1, 3)), Throws.ArgumentException.With.Message.Contains("mask must be [1, 4]"));
    }
}
