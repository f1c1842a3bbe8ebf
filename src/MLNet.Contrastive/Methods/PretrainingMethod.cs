using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// A self-supervised method: the encoder that is kept and exported, plus the heads, targets and queues its objective
/// needs, and its step lifecycle. The training loop calls, once per step: <see cref="Loss"/> → backward →
/// <see cref="AfterBackward"/> → optimizer step (over <see cref="ParameterGroups"/>) → <see cref="AfterStep"/>.
/// Everything the method registers (buffers included: targets, queues) is saved in checkpoints.
/// </summary>
public abstract class PretrainingMethod : nn.Module
{
    /// <summary>Wraps <paramref name="encoder"/>; <paramref name="options"/> are the settings as resolved for the data (saved in checkpoints).</summary>
    protected PretrainingMethod(string name, ImageEncoder encoder, MethodOptions options) : base(name)
    {
        Encoder = encoder;
        Options = options;
    }

    /// <summary>The encoder being pretrained; input [N, C, H, W] in [0, 1], output [N, D].</summary>
    public ImageEncoder Encoder { get; }

    /// <summary>The method's settings, resolved for the data (e.g. the class count of <see cref="SupervisedOptions"/>).</summary>
    public MethodOptions Options { get; }

    /// <summary>How many augmented views of each image one step passes through the trained encoder (for views/s).</summary>
    public abstract int ViewsPerImage { get; }

    /// <summary>
    /// The views a step on <paramref name="images"/> images passes through the encoder (views/s counts them):
    /// <see cref="ViewsPerImage"/> each, unless the batch's labels change it (FixMatch's unlabelled images take two).
    /// </summary>
    public virtual long ViewsInStep(int images, StepContext context) => (long)images * ViewsPerImage;

    /// <summary>Whether <see cref="Loss"/> needs the batch's labels (the supervised baseline); self-supervised methods do not.</summary>
    public virtual bool RequiresLabels => false;

    /// <summary>Whether <see cref="Loss"/> needs each image's caption or second image (<see cref="Data.ImageStore.Pairs"/>; CLIP-style training).</summary>
    public virtual bool RequiresPairs => false;

    /// <summary>The training loss (a scalar) for a batch of images [B, C, H, W] in [0, 1]: views, forward passes, objective.</summary>
    public abstract Tensor Loss(Tensor images, StepContext context);

    /// <summary>After the backward pass, before the optimizer step (e.g. zero a frozen part's gradients, clip). Default: nothing.</summary>
    public virtual void AfterBackward(StepContext context) { }

    /// <summary>After the optimizer step (e.g. moving-average targets, queues, prototype normalisation). Default: nothing.</summary>
    public virtual void AfterStep(StepContext context) { }

    /// <summary>
    /// The method's own signals of the last step (e.g. DINO's teacher entropy), by name; the training history records them
    /// with the step (<see cref="Training.StepRecord.Monitors"/>). Default: null, none.
    /// </summary>
    public virtual IReadOnlyDictionary<string, double>? StepMonitors => null;

    /// <summary>The parameters the optimizer trains, by group. Default: every parameter, one group; targets updated by moving average must be left out.</summary>
    public virtual IEnumerable<ParameterGroup> ParameterGroups() => [new ParameterGroup(parameters().ToList())];

    /// <summary>
    /// A view of every image from <paramref name="first"/> and one from <paramref name="second"/>, [2B, C, H, W]: rows
    /// 0…B−1 the first views, B…2B−1 the second. One forward pass over both lets batch norm see all 2B views, as in SimCLR.
    /// </summary>
    protected static Tensor TwoViews(Tensor images, ViewAugmenter first, ViewAugmenter second, StepContext context)
    {
        Tensor views;
        using (NewDisposeScope()) views = cat(new[] { first.Augment(images, context.Generator), second.Augment(images, context.Generator) }, 0).MoveToOuterDisposeScope();
        context.Mark("views");
        return views;
    }
}
