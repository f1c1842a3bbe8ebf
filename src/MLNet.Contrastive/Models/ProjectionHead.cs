using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// SimCLR's MLP projection head: Linear → BatchNorm1d → ReLU → Linear (lightly's SimCLRProjectionHead).
/// [N, input] → [N, output]. Used for the loss only; the exported encoder stops before it.
/// </summary>
public sealed class ProjectionHead : Module<Tensor, Tensor>
{
    private readonly Sequential layers;

    public ProjectionHead(int inputDimension, int hiddenDimension, int outputDimension) : base(nameof(ProjectionHead))
    {
        layers = Sequential(
            ("fc1", Linear(inputDimension, hiddenDimension, hasBias: false)),
            ("bn1", BatchNorm1d(hiddenDimension)),
            ("relu", ReLU()),
            ("fc2", Linear(hiddenDimension, outputDimension)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => layers.forward(x);
}
