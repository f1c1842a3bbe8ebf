using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// DINO's head (facebookresearch/dino <c>vision_transformer.py</c> DINOHead, lightly's DINOProjectionHead): a 3-layer MLP
/// with GELU (input → hidden → hidden → bottleneck; optionally a BatchNorm1d after each hidden layer, DINO's
/// <c>use_bn_in_head</c>, lightly's <c>batch_norm</c>), L2-normalised, then a weight-normalised linear layer without bias
/// onto K prototypes whose rows are kept at unit norm (DINO's <c>norm_last_layer</c>: the weight-norm gain fixed at 1).
/// [N, input] → [N, K]. Used for the loss only; the exported encoder stops before it.
/// </summary>
public sealed class DinoHead : Module<Tensor, Tensor>
{
    private readonly Sequential mlp;
    private readonly Parameter last_layer;

    /// <summary>
    /// A head of the given sizes, linear layers initialised N(0, 0.02²) cut at ±2σ with zero biases, as DINO;
    /// <paramref name="batchNorm"/> puts a BatchNorm1d between each hidden linear layer and its GELU.
    /// </summary>
    public DinoHead(int inputDimension, int hiddenDimension, int bottleneckDimension, int outputDimension, bool batchNorm = false) : base(nameof(DinoHead))
    {
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        for (var i = 1; i <= 2; i++)
        {
            layers.Add(($"fc{i}", Linear(i == 1 ? inputDimension : hiddenDimension, hiddenDimension)));
            if (batchNorm) layers.Add(($"bn{i}", SyncBatchNorm.OneD(hiddenDimension)));
            layers.Add(($"gelu{i}", GELU()));
        }
        layers.Add(("fc3", Linear(hiddenDimension, bottleneckDimension)));
        mlp = Sequential(layers);
        // The direction v of weight_norm's w = g·v/‖v‖ (g = 1); DINO leaves v at nn.Linear's default initialisation.
        last_layer = Parameter(empty(outputDimension, bottleneckDimension));
        using var low = (-0.04).ToScalar();
        using var high = 0.04.ToScalar();
        using (no_grad())
        {
            init.kaiming_uniform_(last_layer, Math.Sqrt(5));
            foreach (var linear in mlp.children().OfType<Linear>())
            {
                init.normal_(linear.weight!, 0, 0.02);
                linear.weight!.clamp_(low, high);
                init.zeros_(linear.bias!);
            }
        }
        RegisterComponents();
    }

    /// <summary>The last layer's direction parameter [K, bottleneck] (its rows are normalised in the forward pass).</summary>
    public Parameter LastLayer => last_layer;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var bottleneck = functional.normalize(mlp.forward(x), dim: 1);
        return functional.linear(bottleneck, functional.normalize(last_layer, dim: 1)).MoveToOuterDisposeScope();
    }
}
