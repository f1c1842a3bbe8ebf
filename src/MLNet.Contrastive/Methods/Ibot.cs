using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Settings of <see cref="Ibot"/>: DINO's (<see cref="DinoOptions"/>, whose head, temperatures, centre momentum,
/// teacher momentum and crops it shares) and the masked-patch part, after lightly's <c>examples/pytorch/ibot.py</c>.
/// </summary>
public sealed class IbotOptions : DinoOptions
{
    /// <summary>Weight of the masked-patch loss; the class-token loss weighs 1 (iBOT: 1 and 1). Default 1.</summary>
    public double PatchLossWeight { get; set; } = 1;

    /// <summary>Lower end of the per-image fraction of a global view's patches that the student sees as the mask token. Default 0.1, as iBOT.</summary>
    public double MinMaskRatio { get; set; } = 0.1;

    /// <summary>Upper end of that fraction. Default 0.5, as iBOT.</summary>
    public double MaxMaskRatio { get; set; } = 0.5;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Ibot(encoder, this, setup);

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Range(PatchLossWeight, 0, 100, nameof(PatchLossWeight));
        Range(MinMaskRatio, 0.01, 0.99, nameof(MinMaskRatio));
        Range(MaxMaskRatio, MinMaskRatio, 0.99, nameof(MaxMaskRatio));
    }
}

/// <summary>
/// iBOT (Zhou et al. 2022): DINO's class-token self-distillation (<see cref="Dino"/>, unchanged) plus masked image
/// modelling by self-distillation. The teacher sees the two global views whole; the student sees them with a random
/// 10–50 % of each image's patches replaced by a learnable mask token inside the ViT
/// (<see cref="VisionTransformer.EncodeMasked"/>, <see cref="PatchMasking.RandomRatios"/>) and predicts, through the
/// same head (shared as in lightly's example), the teacher's centred, sharpened output of each masked patch
/// (<see cref="IbotPatchLoss"/>, its own centre). Loss = class-token loss + <see cref="IbotOptions.PatchLossWeight"/> ×
/// patch loss. ViT encoders only; the mask token and both centres are in the checkpoint, the exported encoder has neither.
/// </summary>
public sealed class Ibot : Dino
{
    private readonly VisionTransformer vit;
    private readonly VisionTransformer teacherVit;
    private readonly IbotOptions options;
    private readonly Parameter maskToken;
    private readonly Tensor patchCenter;

    /// <summary>iBOT around the Vision Transformer <paramref name="encoder"/>; throws for any other encoder.</summary>
    public Ibot(ImageEncoder encoder, IbotOptions options, MethodSetup setup) : base(nameof(Ibot), RequireVit(encoder), options, setup)
    {
        vit = (VisionTransformer)encoder;
        teacherVit = (VisionTransformer)TeacherEncoder;
        this.options = options;
        // iBOT's masked_embed starts at zeros.
        maskToken = new Parameter(zeros(encoder.OutputDimension));
        patchCenter = zeros(1, options.Prototypes);
        register_parameter("mask_token", maskToken);
        register_buffer("patch_center", patchCenter, persistent: true);
    }

    private static ImageEncoder RequireVit(ImageEncoder encoder) => encoder as VisionTransformer
        ?? throw new ArgumentException($"iBOT replaces masked patches by a mask token inside the encoder, so it needs a Vision Transformer encoder (VitTiny, VitSmall); got a {encoder.Options.Architecture} encoder.", nameof(encoder));

    /// <summary>The centre [1, K] subtracted from the teacher's patch outputs.</summary>
    public Tensor PatchCenter => patchCenter;

    /// <summary>The learnable token [D] the student sees in place of a masked patch.</summary>
    public Tensor MaskToken => maskToken;

    /// <summary>The class-token loss plus the weighted patch loss; the monitors add the last step's "PatchLoss" to DINO's.</summary>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var n = images.shape[0];
        var views = Crops.Crops(images, context.Generator);
        context.Mark("views");
        var global = views[0];
        var patch = vit.Options.PatchSize;
        var patches = (int)(global.shape[2] / patch * (global.shape[3] / patch));
        var mask = PatchMasking.RandomRatios(global.shape[0], patches, options.MinMaskRatio, options.MaxMaskRatio, context.Generator, global.device);
        var tokens = vit.EncodeMasked(global, mask, maskToken);
        var student = Head.forward(tokens.select(1, 0)).split(n).Concat(views.Skip(1).SelectMany(v => Head.forward(Student.forward(v)).split(n))).ToList();
        var studentPatches = Head.forward(MaskedRows(tokens, mask));
        List<Tensor> targets;
        Tensor teacherPatches;
        using (no_grad())
        {
            var teacherTokens = teacherVit.Tokens(global);
            targets = TeacherHead.forward(teacherTokens.select(1, 0)).split(n).ToList();
            teacherPatches = TeacherHead.forward(MaskedRows(teacherTokens, mask));
        }
        context.Mark("encoder");
        var classLoss = ClassTokenLoss(student, targets, context);
        var (patchLoss, updated) = IbotPatchLoss.Compute(studentPatches, teacherPatches, mask, patchCenter,
            options.StudentTemperature, options.TeacherTemperatureAt(context.Progress), options.CenterMomentum);
        AddMonitor("PatchLoss", patchLoss.item<float>());
        using (no_grad()) patchCenter.copy_(context.Ranks is null ? updated : GlobalPatchCenter(teacherPatches, context.Ranks));
        return (classLoss + options.PatchLossWeight * patchLoss).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The patch centre moved by the mean of every rank's teacher outputs of masked patches: the ranks mask different
    /// numbers of patches, so their sums and counts are averaged (their ratio is the global mean), not their means.
    /// </summary>
    private Tensor GlobalPatchCenter(Tensor teacherPatches, Training.IDataParallel ranks)
    {
        using var scope = NewDisposeScope();
        var sums = cat([teacherPatches.sum(dim: 0), full([1L], (float)teacherPatches.shape[0], dtype: teacherPatches.dtype, device: teacherPatches.device)]).unsqueeze(0);
        ranks.Average([sums]);
        var mean = sums[.., ..^1] / sums[.., ^1..];
        return (patchCenter * options.CenterMomentum + mean * (1 - options.CenterMomentum)).MoveToOuterDisposeScope();
    }

    /// <summary>The patch tokens of the masked patches, [N, 1 + L, D] and mask [N, L] → [M, D], row-major (as <see cref="IbotPatchLoss"/> reads them).</summary>
    private static Tensor MaskedRows(Tensor tokens, Tensor mask)
    {
        var width = tokens.shape[2];
        return tokens.narrow(1, 1, mask.shape[1]).masked_select(mask.to_type(ScalarType.Bool).unsqueeze(-1)).view(-1, width);
    }

    /// <summary>The student's encoder, head and mask token; the teacher is not trained.</summary>
    public override IEnumerable<ParameterGroup> ParameterGroups() => [new ParameterGroup(Student.parameters().Concat(Head.parameters()).Append(maskToken).ToList())];
}
