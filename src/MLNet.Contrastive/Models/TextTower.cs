using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// The text tower of paired training: an MLP over a caption's hashed word-bag counts
/// (<see cref="Data.TextFeaturization"/>), Linear → ReLU → Linear, [N, T] → [N, P]. Small enough to train on a CPU
/// beside the image encoder, and exported to ONNX like it (<see cref="Onnx.ClipOnnxExporter"/>).
/// </summary>
public sealed class TextTower : Module<Tensor, Tensor>
{
    /// <summary>A tower from <paramref name="inputDimension"/> features through <paramref name="hiddenDimension"/> units to <paramref name="outputDimension"/>.</summary>
    public TextTower(int inputDimension, int hiddenDimension, int outputDimension) : base(nameof(TextTower))
    {
        Layers = Sequential(("fc1", Linear(inputDimension, hiddenDimension)), ("relu", ReLU()), ("fc2", Linear(hiddenDimension, outputDimension)));
        InputDimension = inputDimension;
        RegisterComponents();
    }

    /// <summary>T, the feature length the tower takes.</summary>
    public int InputDimension { get; }

    /// <summary>The layers, in order (what the ONNX export translates).</summary>
    public Sequential Layers { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor features) => Layers.forward(features);
}
