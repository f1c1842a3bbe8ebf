using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// Settings of <see cref="Dino"/>: DINO's recipe (facebookresearch/dino <c>main_dino.py</c>) sized for small images and
/// short runs on a CPU: hidden 512 and K = 1,024 prototypes (DINO: 2,048 and 65,536), 4 small crops instead of 8, a
/// faster teacher (τ_base 0.99) and, with a CNN, batch norm in the head.
/// </summary>
public class DinoOptions : MethodOptions, System.Text.Json.Serialization.IJsonOnDeserializing
{
    /// <summary>K, the prototypes of the head's last layer (the softmax's width). Default 1024.</summary>
    public int Prototypes { get; set; } = 1024;

    /// <summary>Hidden width of the head's MLP. Default 512.</summary>
    public int HiddenDimension { get; set; } = 512;

    /// <summary>Width of the L2-normalised bottleneck before the prototypes. Default 256, as DINO.</summary>
    public int BottleneckDimension { get; set; } = 256;

    /// <summary>
    /// A BatchNorm1d after each hidden layer of the head (DINO's <c>use_bn_in_head</c>); null: on for convolutional
    /// encoders, off for ViTs (DINO's ViT recipe). A CNN's pooled features share a large common part (they follow
    /// ReLUs), so without it the centred teacher sees almost the same output for every image, is near uniform from the
    /// first step, and the student follows it into the uniform collapse (loss at ln K). Default null.
    /// </summary>
    public bool? HeadBatchNorm { get; set; }

    /// <summary>τ_s, the student's softmax temperature. Default 0.1.</summary>
    public double StudentTemperature { get; set; } = 0.1;

    /// <summary>
    /// τ_t after the warm-up (the teacher's sharpening). Default 0.04, the default of DINO's <c>main_dino.py</c> and of
    /// lightly's DINOLoss (DINO's ViT-S/16 recipe warms up to 0.07 over 30 of 300 epochs).
    /// </summary>
    public double TeacherTemperature { get; set; } = 0.04;

    /// <summary>τ_t at the start; it rises linearly to <see cref="TeacherTemperature"/> over the warm-up. Default 0.04.</summary>
    public double WarmupTeacherTemperature { get; set; } = 0.04;

    /// <summary>Fraction of training over which τ_t warms up (DINO: 30 of 100–300 epochs). Default 0.3.</summary>
    public double TeacherTemperatureWarmupFraction { get; set; } = 0.3;

    /// <summary>m, the momentum of the centre of the teacher's outputs. Default 0.9.</summary>
    public double CenterMomentum { get; set; } = 0.9;

    /// <summary>
    /// τ_base of the teacher's moving average; τ rises to 1 along a cosine over training. Default 0.99, as BYOL here
    /// (DINO: 0.996 over 1,251 steps an epoch). At 0.996 the teacher of a run of a few hundred steps is still mostly its
    /// random initialisation at the end, and the student learns to imitate that.
    /// </summary>
    public double BaseMomentum { get; set; } = 0.99;

    /// <summary>Fraction of training with the head's last layer frozen (DINO freezes it for the first epoch). Default 0.01.</summary>
    public double FreezeLastLayerFraction { get; set; } = 0.01;

    /// <summary>
    /// Each parameter's gradient is scaled down to this L2 norm when larger, after backward (DINO's
    /// <c>clip_gradients</c>, per parameter tensor; its default 3.0): keeps the early, unstable steps of a ViT from
    /// jumping. Null: no clipping. Default 3.0.
    /// </summary>
    public double? GradientClip { get; set; } = 3.0;

    /// <summary>Lower end of the global crops' area fraction (DINO: 0.4; the upper end is the run's recipe's). Default 0.4.</summary>
    public double GlobalCropScaleMin { get; set; } = 0.4;

    /// <summary>Multi-crop: small crops per image besides the two global views; 0 trains on the two views only. Default 4.</summary>
    public int LocalCrops { get; set; } = 4;

    /// <summary>Side of the small crops in pixels; null is 4/7 of the image side (DINO's 96 of 224), a multiple of a ViT's patch. Default null.</summary>
    public int? LocalCropSize { get; set; }

    /// <summary>Lower end of the small crops' area fraction. Default 0.05, as DINO.</summary>
    public double LocalCropScaleMin { get; set; } = 0.05;

    /// <summary>Upper end of the small crops' area fraction. Default 0.4, as DINO.</summary>
    public double LocalCropScaleMax { get; set; } = 0.4;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup) => new Dino(encoder, this, setup);

    /// <summary>
    /// Settings read from JSON that do not mention <see cref="HeadBatchNorm"/> come from checkpoints written before it
    /// existed, whose heads have no batch norm: they load as false (written settings say null, true or false).
    /// </summary>
    void System.Text.Json.Serialization.IJsonOnDeserializing.OnDeserializing() => HeadBatchNorm = false;

    /// <inheritdoc/>
    public override void Validate()
    {
        Range(Prototypes, 2, 1 << 20, nameof(Prototypes));
        Positive(HiddenDimension, nameof(HiddenDimension));
        Positive(BottleneckDimension, nameof(BottleneckDimension));
        Positive(StudentTemperature, nameof(StudentTemperature));
        Positive(TeacherTemperature, nameof(TeacherTemperature));
        Positive(WarmupTeacherTemperature, nameof(WarmupTeacherTemperature));
        Range(TeacherTemperatureWarmupFraction, 0, 1, nameof(TeacherTemperatureWarmupFraction));
        Range(CenterMomentum, 0, 1, nameof(CenterMomentum));
        Range(BaseMomentum, 0, 1, nameof(BaseMomentum));
        Range(FreezeLastLayerFraction, 0, 1, nameof(FreezeLastLayerFraction));
        if (GradientClip is { } clip) Positive(clip, nameof(GradientClip));
        Range(GlobalCropScaleMin, 1e-3, 1, nameof(GlobalCropScaleMin));
        Range(LocalCrops, 0, 16, nameof(LocalCrops));
        if (LocalCropSize is { } size) Positive(size, nameof(LocalCropSize));
        Range(LocalCropScaleMin, 1e-3, 1, nameof(LocalCropScaleMin));
        Range(LocalCropScaleMax, LocalCropScaleMin, 1, nameof(LocalCropScaleMax));
    }

    /// <summary>τ_t at <paramref name="progress"/>: linear from <see cref="WarmupTeacherTemperature"/> to <see cref="TeacherTemperature"/> over the warm-up, then constant.</summary>
    public double TeacherTemperatureAt(double progress) =>
        progress >= TeacherTemperatureWarmupFraction
            ? TeacherTemperature
            : WarmupTeacherTemperature + (TeacherTemperature - WarmupTeacherTemperature) * progress / TeacherTemperatureWarmupFraction;
}

/// <summary>
/// DINO (Caron et al. 2021): self-distillation with no labels. The student (encoder → <see cref="DinoHead"/>) sees every
/// crop, the teacher (its moving average, τ along a cosine from <see cref="DinoOptions.BaseMomentum"/> to 1) only the two global ones; the student predicts the
/// teacher's centred, sharpened softmax of each global crop from every other crop (<see cref="DinoLoss"/>). Works with
/// ResNets and ViTs (a ViT's small crops get interpolated position embeddings). The centre is a buffer, so checkpoints
/// carry it; each step's teacher entropy and student–teacher KL are recorded in the history (<see cref="StepMonitors"/>).
/// </summary>
public class Dino : PretrainingMethod
{
    private readonly ImageEncoder encoder;
    private readonly DinoHead head;
    private readonly ImageEncoder teacherEncoder;
    private readonly DinoHead teacherHead;
    private readonly MultiCrop crops;
    private readonly DinoOptions options;
    private readonly Tensor center;
    private readonly MomentumTarget teacher;
    private Dictionary<string, double>? monitors;

    /// <summary>DINO around <paramref name="encoder"/>; the crops follow the run's recipe.</summary>
    public Dino(ImageEncoder encoder, DinoOptions options, MethodSetup setup) : this(nameof(Dino), encoder, options, setup) { }

    /// <summary>For a method built on DINO (<see cref="Ibot"/>): its name, the rest as the public constructor.</summary>
    protected Dino(string name, ImageEncoder encoder, DinoOptions options, MethodSetup setup) : base(name, encoder, options)
    {
        this.encoder = encoder;
        this.options = options;
        var batchNorm = options.HeadBatchNorm ?? encoder is not VisionTransformer;
        head = new DinoHead(encoder.OutputDimension, options.HiddenDimension, options.BottleneckDimension, options.Prototypes, batchNorm);
        teacherEncoder = ImageEncoder.Create(encoder.Options);
        teacherHead = new DinoHead(encoder.OutputDimension, options.HiddenDimension, options.BottleneckDimension, options.Prototypes, batchNorm);
        var global = setup.Views.Clone();
        global.CropScaleMin = Math.Min(options.GlobalCropScaleMin, global.CropScaleMax);
        var patch = encoder is VisionTransformer ? encoder.Options.PatchSize : 1;
        crops = new MultiCrop(global, options.LocalCrops, options.LocalCropSize, options.LocalCropScaleMin, options.LocalCropScaleMax, patch);
        center = zeros(1, options.Prototypes);
        register_buffer("center", center, persistent: true);
        RegisterComponents();
        teacher = new MomentumTarget((encoder, teacherEncoder), (head, teacherHead));
    }

    /// <summary>The student's encoder.</summary>
    protected ImageEncoder Student => encoder;

    /// <summary>The student's head (a subclass may share it with other outputs).</summary>
    protected DinoHead Head => head;

    /// <summary>The teacher's encoder, a moving average of <see cref="Student"/>.</summary>
    protected ImageEncoder TeacherEncoder => teacherEncoder;

    /// <summary>The teacher's head.</summary>
    protected DinoHead TeacherHead => teacherHead;

    /// <summary>The two global views and the small crops.</summary>
    protected MultiCrop Crops => crops;

    /// <summary>The centre [1, K] subtracted from the teacher's outputs.</summary>
    public Tensor Center => center;

    /// <summary>The current τ of the teacher's moving average.</summary>
    public double Momentum { get; private set; }

    /// <inheritdoc/>
    public override int ViewsPerImage => crops.Views;

    /// <summary>The last step's "TeacherEntropy" (0: collapsed to one prototype; log K: uniform), "KlDivergence" (student from teacher) and "TeacherTemperature".</summary>
    public override IReadOnlyDictionary<string, double>? StepMonitors => monitors;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var n = images.shape[0];
        var views = crops.Crops(images, context.Generator);
        context.Mark("views");
        var student = views.SelectMany(v => head.forward(encoder.forward(v)).split(n)).ToList();
        List<Tensor> targets;
        using (no_grad()) targets = teacherHead.forward(teacherEncoder.forward(views[0])).split(n).ToList();
        context.Mark("encoder");
        return ClassTokenLoss(student, targets, context).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="DinoLoss"/> of the student's outputs of every crop against the teacher's of the global ones at this
    /// step's τ_t; records the monitors (a subclass may add to them) and moves the centre.
    /// </summary>
    protected Tensor ClassTokenLoss(IReadOnlyList<Tensor> student, IReadOnlyList<Tensor> targets, StepContext context)
    {
        var temperature = options.TeacherTemperatureAt(context.Progress);
        var (loss, updated) = DinoLoss.Compute(student, targets, center, options.StudentTemperature, temperature, options.CenterMomentum);
        var (entropy, kl) = DinoLoss.Monitors(student, targets, center, options.StudentTemperature, temperature);
        monitors = new() { ["TeacherEntropy"] = entropy, ["KlDivergence"] = kl, ["TeacherTemperature"] = temperature };
        // The teacher side takes no gradient, so the loss's graph does not hold the centre.
        using (no_grad()) center.copy_(GlobalCenter(updated, context));
        return loss;
    }

    /// <summary>
    /// A centre moved by this rank's batch mean, made the global batch's over data-parallel ranks (as DINO's all-reduce
    /// of the batch centre): the update is linear in the mean and the ranks' slices are equal, so the ranks' average is it.
    /// </summary>
    protected static Tensor GlobalCenter(Tensor updated, StepContext context)
    {
        context.Ranks?.Average([updated]);
        return updated;
    }

    /// <summary>Adds <paramref name="name"/> to this step's monitors (after <see cref="ClassTokenLoss"/>).</summary>
    protected void AddMonitor(string name, double value) => monitors?.Add(name, value);

    /// <summary>
    /// Clips each parameter's gradient to <see cref="DinoOptions.GradientClip"/>, then keeps the head's last layer still for
    /// the first <see cref="DinoOptions.FreezeLastLayerFraction"/> of training (DINO's order).
    /// </summary>
    public override void AfterBackward(StepContext context)
    {
        if (options.GradientClip is { } clip) ClipEachGradient(parameters(), clip);
        if (context.Progress < options.FreezeLastLayerFraction) head.LastLayer.grad?.zero_();
    }

    /// <summary>DINO's <c>clip_gradients</c>: every gradient whose L2 norm exceeds <paramref name="clip"/> is scaled by clip / (norm + 1e-6).</summary>
    internal static void ClipEachGradient(IEnumerable<Parameter> parameters, double clip)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var gradients = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (gradients.Count == 0) return;
        using var limit = clip.ToScalar();
        using var epsilon = 1e-6.ToScalar();
        using var one = 1.ToScalar();
        // One norm per tensor, all at once; factors of 1 leave the small ones as they are.
        var factors = stack(gradients.Select(g => g.norm()).ToArray()).add_(epsilon).reciprocal_().mul_(limit).clamp_max_(one);
        for (var i = 0; i < gradients.Count; i++) gradients[i].mul_(factors[i]);
    }

    /// <summary>Moves the teacher towards the student with τ from the cosine schedule.</summary>
    public override void AfterStep(StepContext context)
    {
        Momentum = MomentumTarget.Tau(options.BaseMomentum, context.Progress);
        teacher.Update(Momentum);
    }

    /// <summary>The student's encoder and head; the teacher is not trained.</summary>
    public override IEnumerable<ParameterGroup> ParameterGroups() => [new ParameterGroup(encoder.parameters().Concat(head.parameters()).ToList())];
}
