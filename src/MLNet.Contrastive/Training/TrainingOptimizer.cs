using MLNet.Contrastive.Methods;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// The run's optimizer over a method's <see cref="ParameterGroup"/>s: AdamW, SGD or LARS, each group at the
/// scheduled (or, when fixed, the peak) learning rate times its factor.
/// </summary>
internal sealed class TrainingOptimizer
{
    private readonly OptimizerHelper optimizer;
    private readonly List<ParameterGroup> groups = [];
    private readonly List<Parameter> adapted = [];
    private readonly PretrainOptions options;

    public TrainingOptimizer(IEnumerable<ParameterGroup> parameterGroups, PretrainOptions options)
    {
        this.options = options;
        WeightDecay = options.Run.WeightDecay;
        var lr = options.PeakLearningRate;
        foreach (var group in parameterGroups.Where(g => g.Parameters.Count > 0))
        {
            if (options.Optimizer != OptimizerKind.Lars)
            {
                groups.Add(group);
                continue;
            }
            // LARS adapts and decays weight tensors only; biases and normalisation scales and shifts (1-D) keep plain SGD.
            var weights = group.Parameters.Where(p => p.ndim > 1).ToList();
            adapted.AddRange(weights);
            groups.AddRange(new[] { group with { Parameters = weights }, group with { Parameters = group.Parameters.Where(p => p.ndim <= 1).ToList() } }
                .Where(g => g.Parameters.Count > 0));
        }
        optimizer = options.Optimizer switch
        {
            OptimizerKind.AdamW => optim.AdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters, lr, 0.9, 0.999, 1e-8, options.Run.WeightDecay, false, false)), lr),
            OptimizerKind.Sgd => optim.SGD(groups.Select(g => new SGD.ParamGroup(g.Parameters, lr, options.SgdMomentum, 0, options.Run.WeightDecay, false, false)), lr),
            // LARS applies its weight decay itself, to the adapted weights only.
            OptimizerKind.Lars => optim.SGD(groups.Select(g => new SGD.ParamGroup(g.Parameters, lr, options.SgdMomentum, 0, 0, false, false)), lr),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "Unknown optimizer."),
        };
    }

    /// <summary>Every parameter this optimizer trains.</summary>
    public IEnumerable<Parameter> Parameters => groups.SelectMany(g => g.Parameters);

    /// <summary>Sets every group's learning rate: <paramref name="scheduled"/> (or the peak, for fixed groups) times the group's factor.</summary>
    public void SetLearningRate(double scheduled)
    {
        foreach (var (group, settings) in optimizer.ParamGroups.Zip(groups))
            group.LearningRate = (settings.FixedLearningRate ? options.PeakLearningRate : scheduled) * settings.LearningRateFactor;
    }

    /// <summary>The weight decay the next steps apply (<see cref="PretrainOptions.WeightDecayEnd"/>'s schedule); the run's until set.</summary>
    public double WeightDecay { get; private set; }

    /// <summary>Sets the weight decay of every group (LARS: of its adapted weights) to <paramref name="scheduled"/>.</summary>
    public void SetWeightDecay(double scheduled)
    {
        WeightDecay = scheduled;
        if (options.Optimizer == OptimizerKind.Lars) return;
        foreach (var group in optimizer.ParamGroups)
            switch (group)
            {
                case AdamW.ParamGroup adamW: adamW.Options.weight_decay = scheduled; break;
                case SGD.ParamGroup sgd: sgd.Options.weight_decay = scheduled; break;
            }
    }

    public void ZeroGrad() => optimizer.zero_grad();

    public void Step()
    {
        if (adapted.Count > 0) AdaptGradients(adapted, WeightDecay, options.LarsTrustCoefficient);
        optimizer.step();
    }

    public void Save(BinaryWriter writer) => optimizer.save_state_dict(writer);

    public void Load(BinaryReader reader) => optimizer.load_state_dict(reader);

    /// <summary>
    /// LARS's gradient transform, before the SGD step: g ← (g + wd·w) · η‖w‖ / (‖g‖ + wd‖w‖), with the ratio 1 when
    /// ‖w‖ or ‖g‖ is 0 (solo-learn's LARS without learning-rate clipping).
    /// </summary>
    internal static void AdaptGradients(IEnumerable<Parameter> weights, double weightDecay, double trustCoefficient)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var weight in weights)
        {
            var gradient = weight.grad;
            if (gradient is null) continue;
            var (weightNorm, gradientNorm) = (weight.norm(), gradient.norm());
            var trust = where((weightNorm > 0).logical_and(gradientNorm > 0),
                trustCoefficient * weightNorm / (gradientNorm + weightDecay * weightNorm), ones_like(weightNorm));
            gradient.add_(weight, alpha: weightDecay).mul_(trust);
        }
    }
}
