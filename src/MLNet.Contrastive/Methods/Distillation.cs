using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>What of the teacher the student learns to reproduce.</summary>
public enum DistillationTarget
{
    /// <summary>The teacher's last feature map (a ResNet's last stage, a ViT's patch tokens), token by token (LightlyTrain's distillation v2).</summary>
    Spatial,

    /// <summary>The teacher's pooled embedding (a ResNet's global average, a ViT's class token).</summary>
    Global,
}

/// <summary>Settings of <see cref="Distillation"/>.</summary>
public sealed class DistillationOptions : MethodOptions
{
    /// <summary>
    /// The frozen teacher: <c>imagenet-resnet18</c> (ML.NET's ImageNet ResNet-18), a pretraining run's folder or
    /// checkpoint, or a PyTorch state dict (.pt, .pth, .safetensors of a torchvision or timm ResNet or ViT). Required.
    /// </summary>
    public string Teacher { get; set; } = "";

    /// <summary>
    /// The side the views are resized to for the teacher (bilinear); 0 takes the teacher's own (its run's image size, 224 for
    /// ImageNet weights, a ViT's position-embedding size). Default 0.
    /// </summary>
    public int TeacherImageSize { get; set; }

    /// <summary>The teacher's feature width; 0 reads it from the teacher (the checkpoint records it, so the teacher is not loaded to rebuild a run). Default 0.</summary>
    public int TeacherDimension { get; set; }

    /// <summary>Spatial (token by token, the default, as LightlyTrain) or the pooled embedding. Default Spatial.</summary>
    public DistillationTarget Target { get; set; } = DistillationTarget.Spatial;

    /// <summary>Mse (LightlyTrain's) or Cosine. Default Mse.</summary>
    public DistillationLossKind Loss { get; set; } = DistillationLossKind.Mse;

    /// <summary>Mix each view with another of the batch (λ ~ U(0, 1), one λ per step), as LightlyTrain's distillation does: more distinct inputs per image. Default true.</summary>
    public bool Mixup { get; set; } = true;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup)
    {
        var resolved = (DistillationOptions)Clone();
        Lazy<(ImageEncoder Encoder, int ImageSize)> teacher = new(() => LoadTeacher(Teacher));
        if (resolved.TeacherDimension == 0) resolved.TeacherDimension = teacher.Value.Encoder.OutputDimension;
        if (resolved.TeacherImageSize == 0) resolved.TeacherImageSize = teacher.Value.ImageSize;
        return new Distillation(encoder, resolved, setup, teacher);
    }

    /// <summary>The teacher in eval mode, and the image side it was trained at.</summary>
    internal static (ImageEncoder Encoder, int ImageSize) LoadTeacher(string teacher)
    {
        if (string.IsNullOrWhiteSpace(teacher))
            throw new ArgumentException("Distillation needs a teacher: imagenet-resnet18, a pretraining run's folder or checkpoint, or a PyTorch state dict (--teacher).", nameof(Teacher));
        if (Path.GetExtension(teacher).Equals(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{teacher}: ONNX teachers are not supported yet; give its pretraining run's folder, a PyTorch state dict, or imagenet-resnet18.", nameof(Teacher));
        var loaded = PretrainedEncoder.Load(teacher);
        var encoder = loaded.Encoder;
        encoder.eval();
        foreach (var parameter in encoder.parameters()) parameter.requires_grad = false;
        var size = loaded.ImageShape?.Height
            ?? (encoder.Options.Architecture == EncoderArchitecture.VisionTransformer ? encoder.Options.ImageSize : Onnx.ImageNetWeights.ImageSize);
        return (encoder, size);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        if (string.IsNullOrWhiteSpace(Teacher))
            throw new ArgumentException("Distillation needs a teacher: imagenet-resnet18, a pretraining run's folder or checkpoint, or a PyTorch state dict (--teacher).", nameof(Teacher));
        if (TeacherImageSize < 0) throw new ArgumentOutOfRangeException(nameof(TeacherImageSize), TeacherImageSize, "TeacherImageSize must be 0 (the teacher's own) or positive.");
        if (TeacherDimension < 0) throw new ArgumentOutOfRangeException(nameof(TeacherDimension), TeacherDimension, "TeacherDimension must be 0 (from the teacher) or positive.");
    }
}

/// <summary>
/// Distillation pretraining (LightlyTrain's default method; Beyer et al. 2022, "A good teacher is patient and
/// consistent"): one view of each image from the run's recipe (optionally mixed with another image of the batch) goes
/// through the frozen teacher — resized to the teacher's image size, grey replicated to its three channels — and through
/// the student; a linear head maps the student's features to the teacher's width, and the loss
/// (<see cref="FeatureDistillationLoss"/>) pulls them onto the teacher's: token by token on the last feature maps
/// (the student's map resized bilinearly to the teacher's grid), or on the pooled embeddings. The teacher is not part of
/// the method's state: it is neither trained nor saved in checkpoints, and is loaded only when a step needs it.
/// </summary>
public sealed class Distillation : PretrainingMethod
{
    private readonly ImageEncoder encoder;
    private readonly Linear head;
    private readonly ViewAugmenter views;
    private readonly Lazy<(ImageEncoder Encoder, int ImageSize)> teacher;
    private readonly DistillationOptions options;

    /// <summary>Distillation into <paramref name="encoder"/>; <paramref name="options"/> resolved (teacher width and size known).</summary>
    internal Distillation(ImageEncoder encoder, DistillationOptions options, MethodSetup setup, Lazy<(ImageEncoder Encoder, int ImageSize)> teacher)
        : base(nameof(Distillation), encoder, options)
    {
        this.encoder = encoder;
        this.options = options;
        this.teacher = teacher;
        views = new ViewAugmenter(setup.Views);
        head = nn.Linear(encoder.OutputDimension, options.TeacherDimension);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int ViewsPerImage => 1;

    /// <summary>The teacher's features of views [N, C, H, W] in [0, 1]: [N, h·w, Dt] spatial or [N, Dt] global, without gradients.</summary>
    internal Tensor TeacherFeatures(Tensor views)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (network, _) = teacher.Value;
        var input = views;
        if (input.shape[1] != network.Options.InputChannels)
            input = network.Options.InputChannels == 3 && input.shape[1] == 1
                ? input.expand(-1, 3, -1, -1)
                : throw new InvalidOperationException($"The teacher takes {network.Options.InputChannels} channels; the images have {input.shape[1]}.");
        var size = options.TeacherImageSize;
        if (input.shape[2] != size || input.shape[3] != size)
            input = nn.functional.interpolate(input, [size, size], mode: InterpolationMode.Bilinear, align_corners: false);
        if (network.Options.Architecture == EncoderArchitecture.ResNet) input = ResNetEncoder.ChannelsLast(input);
        var features = options.Target == DistillationTarget.Spatial
            ? network.FeatureMap(input).flatten(2).transpose(1, 2).contiguous()
            : network.forward(input);
        if (features.shape[^1] != options.TeacherDimension)
            throw new InvalidOperationException($"The teacher {options.Teacher} gives {features.shape[^1]}-d features; this run was built for {options.TeacherDimension}.");
        return features.MoveToOuterDisposeScope();
    }

    /// <summary>The student's features projected to the teacher's width, laid out as <paramref name="teacherFeatures"/>.</summary>
    internal Tensor StudentFeatures(Tensor views, Tensor teacherFeatures)
    {
        using var scope = NewDisposeScope();
        if (options.Target == DistillationTarget.Global) return head.forward(encoder.forward(views)).MoveToOuterDisposeScope();
        // [N, Ds, h', w'] → [N, h', w', Dt] → [N, Dt, h, w] at the teacher's grid → [N, h·w, Dt].
        var map = encoder.FeatureMap(views);
        var projected = head.forward(map.permute(0, 2, 3, 1)).permute(0, 3, 1, 2);
        var tokens = teacherFeatures.shape[1];
        var side = (long)Math.Round(Math.Sqrt(tokens));
        if (side * side != tokens) throw new InvalidOperationException($"The teacher's {tokens} feature tokens do not form a square grid.");
        if (projected.shape[2] != side || projected.shape[3] != side)
            projected = nn.functional.interpolate(projected, [side, side], mode: InterpolationMode.Bilinear, align_corners: false);
        return projected.flatten(2).transpose(1, 2).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor Loss(Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var view = views.Augment(images, context.Generator);
        if (options.Mixup && view.shape[0] > 1)
        {
            // x' = λ·x + (1 − λ)·x[π], one λ and one permutation per step, from the run's generator.
            var lambda = rand(1, generator: context.Generator).item<float>();
            var permutation = randperm(view.shape[0], generator: context.Generator);
            using var weight = lambda.ToScalar();
            using var rest = (1 - lambda).ToScalar();
            view = view.mul(weight).add_(view.index_select(0, permutation), alpha: rest);
        }
        context.Mark("views");
        var target = TeacherFeatures(view);
        context.Mark("teacher");
        return FeatureDistillationLoss.Compute(StudentFeatures(view, target), target, options.Loss).MoveToOuterDisposeScope();
    }
}
