using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// The MLP head of SimCLR, BYOL, Barlow Twins and VICReg: Linear → BatchNorm1d → ReLU → Linear (lightly's
/// SimCLRProjectionHead), optionally with a BatchNorm1d on the output (SimSiam's projector). [N, input] → [N, output].
/// Used for the loss only; the exported encoder stops before it.
/// </summary>
public sealed class ProjectionHead : Module<Tensor, Tensor>
{
    private readonly Sequential layers;

    /// <summary>A head of the given sizes; <paramref name="normalizeOutput"/> adds a BatchNorm1d after the last Linear.</summary>
    public ProjectionHead(int inputDimension, int hiddenDimension, int outputDimension, bool normalizeOutput = false) : base(nameof(ProjectionHead))
    {
        var modules = new List<(string, Module<Tensor, Tensor>)>
        {
            ("fc1", Linear(inputDimension, hiddenDimension, hasBias: false)),
            ("bn1", SyncBatchNorm.OneD(hiddenDimension)),
            ("relu", ReLU()),
            ("fc2", Linear(hiddenDimension, outputDimension, hasBias: !normalizeOutput)),
        };
        if (normalizeOutput) modules.Add(("bn2", SyncBatchNorm.OneD(outputDimension)));
        layers = Sequential(modules);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => layers.forward(x);
}
