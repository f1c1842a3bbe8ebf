using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Models;

/// <summary>A ViT whose embedding is the mean of its patch tokens (<see cref="VitPooling.MeanPatchTokens"/>), in TorchSharp and exported.</summary>
public class VitPoolingTests
{
    private static VisionTransformer Vit(VitPooling pooling)
    {
        TorchRuntime.Initialize();
        manual_seed(3);
        var vit = (VisionTransformer)ImageEncoder.Create(new EncoderOptions
        {
            Architecture = EncoderArchitecture.VisionTransformer, InputChannels = 1, ImageSize = 28, PatchSize = 7, Depth = 1,
            HiddenDimension = 32, Heads = 2, MlpDimension = 64, Mean = [0.5f], Std = [0.5f], VitPooling = pooling,
        });
        vit.eval();
        return vit;
    }

    [Test]
    public void TheEmbeddingIsTheMeanOfThePatchTokensAfterTheLastNorm()
    {
        using var scope = NewDisposeScope();
        using var pause = CollectionPause.Begin();
        using var noGrad = no_grad();
        var vit = Vit(VitPooling.MeanPatchTokens);
        var images = TestData.SampleTrain(8).Batch(Enumerable.Range(0, 8).ToArray());
        var tokens = vit.Tokens(images);
        Assert.That(tokens.shape, Is.EqualTo(new long[] { 8, 17, 32 }));
        var expected = tokens.narrow(1, 1, 16).mean([1]);
        Assert.That((vit.forward(images) - expected).abs().max().item<float>(), Is.LessThan(1e-6f));
        Assert.That((vit.Embed(images) - expected).abs().max().item<float>(), Is.LessThan(1e-6f));
        Assert.That((vit.forward(images) - tokens.select(1, 0)).abs().max().item<float>(), Is.GreaterThan(1e-2f), "not the class token");
        Assert.That(vit.Options.Describe(), Does.Contain("mean of the patch tokens"));
        Assert.That(vit.Options.Clone().VitPooling, Is.EqualTo(VitPooling.MeanPatchTokens));
    }

    [TestCase(VitPooling.MeanPatchTokens)]
    [TestCase(VitPooling.ClassToken)]
    public void OnnxRuntimeMatchesTorchSharp(VitPooling pooling)
    {
        var vit = Vit(pooling);
        var data = TestData.SampleTrain(100);
        using var folder = TestData.NewFolder();
        EncoderOnnxExporter.Export(vit, folder["vit.onnx"], new EncoderOnnxOptions { Height = 28, Width = 28 });
        using var embedder = new ImageEmbedder(folder["vit.onnx"], new ImageEmbedderOptions { BatchSize = 32 });
        var onnx = embedder.Embed(data);
        var torch = Embeddings.FromEncoder(vit, data);
        var largest = onnx.Values.Zip(torch.Values, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(largest, Is.LessThanOrEqualTo(1e-4f), $"max |ONNX − TorchSharp| = {largest:G3}");
    }
}
