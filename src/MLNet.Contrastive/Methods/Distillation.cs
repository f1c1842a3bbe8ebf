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

/// <summary>The units an ONNX teacher's input takes.</summary>
public enum TeacherInput
{
    /// <summary>Pixels 0–255 for this project's own exports (the file's producer says so), ImageNet's normalisation for any other model.</summary>
    Auto,

    /// <summary>Pixel values 0–255, as ML.NET's ExtractPixels and this project's exported encoders take (normalisation inside the graph).</summary>
    Pixels,

    /// <summary>(x − ImageNet mean) / ImageNet std on RGB values in [0, 1], as models exported from torchvision or timm take.</summary>
    ImageNet,

    /// <summary>Values in [0, 1].</summary>
    Unit,
}

/// <summary>Settings of <see cref="Distillation"/>.</summary>
public sealed class DistillationOptions : MethodOptions
{
    /// <summary>
    /// The frozen teacher: <c>imagenet-resnet18</c> (ML.NET's ImageNet ResNet-18), a pretraining run's folder or
    /// checkpoint, a PyTorch state dict (.pt, .pth, .safetensors of a torchvision or timm ResNet or ViT), or an ONNX
    /// image encoder (input [N, C, H, W] of fixed C, H, W; output [N, D]; run by ONNX Runtime). Required.
    /// </summary>
    public string Teacher { get; set; } = "";

    /// <summary>The units an ONNX teacher's input takes. Default Auto.</summary>
    public TeacherInput TeacherInput { get; set; }

    /// <summary>
    /// The side the views are resized to for the teacher (bilinear); 0 takes the teacher's own (its run's image size, 224 for
    /// ImageNet weights, a ViT's position-embedding size). Default 0.
    /// </summary>
    public int TeacherImageSize { get; set; }

    /// <summary>The teacher's feature width; 0 reads it from the teacher (the checkpoint records it, so the teacher is not loaded to rebuild a run). Default 0.</summary>
    public int TeacherDimension { get; set; }

    /// <summary>
    /// Spatial (token by token, the default, as LightlyTrain) or the pooled embedding. An ONNX teacher gives only its
    /// output, so its runs take Global (the run's settings record it).
    /// </summary>
    public DistillationTarget Target { get; set; } = DistillationTarget.Spatial;

    /// <summary>Mse (LightlyTrain's) or Cosine. Default Mse.</summary>
    public DistillationLossKind Loss { get; set; } = DistillationLossKind.Mse;

    /// <summary>Mix each view with another of the batch (λ ~ U(0, 1), one λ per step), as LightlyTrain's distillation does: more distinct inputs per image. Default true.</summary>
    public bool Mixup { get; set; } = true;

    /// <summary>
    /// A folder for the teacher's features of <see cref="CachedViews"/> fixed views of every image, filled as steps need them
    /// and reused by later epochs and runs (<c>pretrain --teacher-cache</c>): after the first epochs the teacher no longer
    /// runs. Each step takes one of an image's K views at random; views are not mixed (<see cref="Mixup"/> is off). A cache
    /// written for another teacher file, teacher size, target, K, seed, view recipe or data is refused by name. Null: no
    /// cache, a new view every step. Default null.
    /// </summary>
    public string? TeacherCache { get; set; }

    /// <summary>Fixed views per image in the <see cref="TeacherCache"/> (K). Default 4.</summary>
    public int CachedViews { get; set; } = 4;

    /// <inheritdoc/>
    public override PretrainingMethod CreateMethod(ImageEncoder encoder, MethodSetup setup)
    {
        var resolved = (DistillationOptions)Clone();
        Lazy<DistillationTeacher> teacher = new(() => DistillationTeacher.Load(Teacher, TeacherInput));
        if (resolved.TeacherDimension == 0) resolved.TeacherDimension = teacher.Value.Dimension;
        if (resolved.TeacherImageSize == 0) resolved.TeacherImageSize = teacher.Value.ImageSize;
        if (teacher.IsValueCreated && !teacher.Value.HasFeatureMap) resolved.Target = DistillationTarget.Global;
        if (resolved.TeacherCache is not null) resolved.Mixup = false;
        return new Distillation(encoder, resolved, setup, teacher);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        if (string.IsNullOrWhiteSpace(Teacher))
            throw new ArgumentException("Distillation needs a teacher: imagenet-resnet18, a pretraining run's folder or checkpoint, a PyTorch state dict, or an ONNX encoder (--teacher).", nameof(Teacher));
        if (TeacherImageSize < 0) throw new ArgumentOutOfRangeException(nameof(TeacherImageSize), TeacherImageSize, "TeacherImageSize must be 0 (the teacher's own) or positive.");
        if (CachedViews < 1) throw new ArgumentOutOfRangeException(nameof(CachedViews), CachedViews, "CachedViews must be at least 1.");
        if (TeacherCache is not null && string.IsNullOrWhiteSpace(TeacherCache)) throw new ArgumentException("TeacherCache must name a folder, or be null for no cache.", nameof(TeacherCache));
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
    private readonly Lazy<DistillationTeacher> teacher;
    private readonly DistillationOptions options;
    private readonly MethodSetup setup;
    private TeacherFeatureCache? cache;

    /// <summary>Distillation into <paramref name="encoder"/>; <paramref name="options"/> resolved (teacher width and size known).</summary>
    internal Distillation(ImageEncoder encoder, DistillationOptions options, MethodSetup setup, Lazy<DistillationTeacher> teacher)
        : base(nameof(Distillation), encoder, options)
    {
        this.encoder = encoder;
        this.options = options;
        this.teacher = teacher;
        this.setup = setup;
        views = new ViewAugmenter(setup.Views);
        head = nn.Linear(encoder.OutputDimension, options.TeacherDimension);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override int ViewsPerImage => 1;

    /// <summary>Views the teacher has embedded in this process (a cached view costs none).</summary>
    internal long TeacherViews { get; private set; }

    /// <summary>The teacher's features of views [N, C, H, W] in [0, 1]: [N, h·w, Dt] spatial or [N, Dt] global, without gradients.</summary>
    internal Tensor TeacherFeatures(Tensor views)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var network = teacher.Value;
        var input = views;
        if (input.shape[1] != network.Channels)
            input = network.Channels == 3 && input.shape[1] == 1
                ? input.expand(-1, 3, -1, -1)
                : throw new InvalidOperationException($"The teacher takes {network.Channels} channels; the images have {input.shape[1]}.");
        var size = options.TeacherImageSize;
        if (input.shape[2] != size || input.shape[3] != size)
            input = nn.functional.interpolate(input, [size, size], mode: InterpolationMode.Bilinear, align_corners: false);
        var features = network.Features(input, options.Target == DistillationTarget.Spatial);
        TeacherViews += views.shape[0];
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
        if (options.TeacherCache is not null)
        {
            var (cachedView, cachedTarget) = CachedViewAndTarget(images, context);
            return FeatureDistillationLoss.Compute(StudentFeatures(cachedView, cachedTarget), cachedTarget, options.Loss).MoveToOuterDisposeScope();
        }
        var view = views.Augment(images, context.Generator);
        if (options.Mixup && view.shape[0] > 1)
        {
            // x' = λ·x + (1 − λ)·x[π], one λ and one permutation per step, from the run's generator. Over data-parallel ranks
            // π is drawn over the global batch, as one process draws it, and the partners come from every rank's views.
            var lambda = rand(1, generator: context.Generator).item<float>();
            var b = view.shape[0];
            var ranks = SampleDraws.Current is { Ranks: > 1 } slice && slice.Images == b ? context.Ranks : null;
            var permutation = randperm(b * (ranks?.WorldSize ?? 1), generator: context.Generator);
            var partners = view;
            if (ranks is not null)
            {
                partners = ranks.AllGather(view.contiguous());
                permutation = permutation.narrow(0, ranks.Rank * b, b);
            }
            using var weight = lambda.ToScalar();
            using var rest = (1 - lambda).ToScalar();
            view = view.mul(weight).add_(partners.index_select(0, permutation.to(view.device)), alpha: rest);
        }
        context.Mark("views");
        var target = TeacherFeatures(view);
        context.Mark("teacher");
        return FeatureDistillationLoss.Compute(StudentFeatures(view, target), target, options.Loss).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One of the K fixed views of each image (the view seeded by the run's seed, the image's index and the view's number)
    /// and the teacher's features of it, from the cache where they are there, else computed and stored.
    /// </summary>
    private (Tensor View, Tensor Target) CachedViewAndTarget(Tensor images, StepContext context)
    {
        var indices = context.Indices ?? throw new InvalidOperationException("A teacher cache needs the batch's image indices (StepContext.Indices).");
        cache ??= new TeacherFeatureCache(options.TeacherCache!, CacheKey());
        var b = indices.Length;
        var chosen = SampleDraws.RandInt(options.CachedViews, [b], context.Generator).data<long>().ToArray();
        var rows = new Tensor[b];
        for (var i = 0; i < b; i++)
        {
            using var generator = new Generator(ViewSeed(setup.Seed, indices[i], (int)chosen[i]));
            rows[i] = views.Augment(images.narrow(0, i, 1), generator);
        }
        var view = cat(rows, 0);
        context.Mark("views");

        using var pixels = images.contiguous().cpu();
        var values = pixels.data<float>().ToArray();
        var perImage = values.Length / b;
        var hashes = new ulong[b];
        for (var i = 0; i < b; i++)
        {
            hashes[i] = TeacherFeatureCache.PixelHash(values.AsSpan(i * perImage, perImage));
            cache.CheckImage(indices[i], hashes[i]);
        }
        var missing = Enumerable.Range(0, b).Where(i => !cache.Has(indices[i], (int)chosen[i])).ToArray();
        if (missing.Length > 0)
        {
            using var rowsToCompute = tensor(missing.Select(i => (long)i).ToArray());
            var computed = TeacherFeatures(view.index_select(0, rowsToCompute.to(view.device)));
            var flat = computed.contiguous().cpu().data<float>().ToArray();
            var length = flat.Length / missing.Length;
            for (var j = 0; j < missing.Length; j++)
                cache.Write(indices[missing[j]], (int)chosen[missing[j]], flat, j * length, length, hashes[missing[j]]);
        }
        context.Mark("teacher");
        var featureLength = (int)cache.FeatureLength;
        var target = new float[b * featureLength];
        for (var i = 0; i < b; i++) cache.Read(indices[i], (int)chosen[i], target, i * featureLength);
        long[] shape = options.Target == DistillationTarget.Global
            ? [b, options.TeacherDimension]
            : [b, featureLength / options.TeacherDimension, options.TeacherDimension];
        return (view, tensor(target, shape).to(view.device));
    }

    /// <summary>The seed of view <paramref name="view"/> of image <paramref name="image"/> (SplitMix64 of the three).</summary>
    internal static ulong ViewSeed(int seed, int image, int view)
    {
        var z = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)(uint)image << 20) ^ (uint)view;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private TeacherCacheKey CacheKey()
    {
        var shape = setup.ImageShape ?? throw new InvalidOperationException("A teacher cache needs the training images' shape (MethodSetup.ImageShape).");
        return new TeacherCacheKey(options.Teacher, TeacherCacheKey.HashOf(DistillationTeacher.FileOf(options.Teacher)), options.TeacherInput.ToString(),
            options.TeacherImageSize, options.Target.ToString(), options.CachedViews, setup.Seed,
            System.Text.Json.JsonSerializer.Serialize(setup.Views), setup.Images, [shape.Channels, shape.Height, shape.Width]);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) cache?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>A frozen teacher: its input shape, its feature width, and its features of views already at its size.</summary>
internal abstract class DistillationTeacher
{
    /// <summary>Channels of the teacher's input.</summary>
    public abstract int Channels { get; }

    /// <summary>The side the teacher was trained at (its default input size).</summary>
    public abstract int ImageSize { get; }

    /// <summary>Width of its features.</summary>
    public abstract int Dimension { get; }

    /// <summary>Whether it gives a feature map (spatial targets); an ONNX teacher gives only its output.</summary>
    public abstract bool HasFeatureMap { get; }

    /// <summary>Features of views [N, C, S, S] in [0, 1] at the teacher's channels and size: [N, h·w, D] spatial, or [N, D].</summary>
    public abstract Tensor Features(Tensor views, bool spatial);

    /// <summary>The file the teacher <paramref name="name"/> is read from (ML.NET's ResNet-18 model, a run's checkpoint, the file itself).</summary>
    public static string FileOf(string name) =>
        name == Onnx.ImageNetWeights.ResNet18Name ? Onnx.ImageNetWeights.ResNet18Path()
        : Directory.Exists(name) ? RunFolder.FindCheckpoint(name)
        : File.Exists(name) ? name
        : throw new FileNotFoundException($"{name}: no such teacher (imagenet-resnet18, a run folder, a checkpoint, a state dict or an ONNX file).", name);

    /// <summary>The teacher <paramref name="name"/> names, in eval mode with frozen weights.</summary>
    public static DistillationTeacher Load(string name, TeacherInput input)
    {
        if (string.IsNullOrWhiteSpace(name))
            throw new ArgumentException("Distillation needs a teacher: imagenet-resnet18, a pretraining run's folder or checkpoint, a PyTorch state dict, or an ONNX encoder (--teacher).", nameof(name));
        if (Path.GetExtension(name).Equals(".onnx", StringComparison.OrdinalIgnoreCase)) return new OnnxTeacher(name, input);
        var loaded = PretrainedEncoder.Load(name);
        var size = loaded.ImageShape?.Height
            ?? (loaded.Encoder.Options.Architecture == EncoderArchitecture.VisionTransformer ? loaded.Encoder.Options.ImageSize : Onnx.ImageNetWeights.ImageSize);
        return new EncoderTeacher(loaded.Encoder, size);
    }
}

/// <summary>A TorchSharp encoder as the teacher (ImageNet weights, a run, a state dict).</summary>
internal sealed class EncoderTeacher : DistillationTeacher
{
    private readonly ImageEncoder encoder;

    public EncoderTeacher(ImageEncoder encoder, int imageSize)
    {
        this.encoder = encoder;
        ImageSize = imageSize;
        encoder.eval();
        foreach (var parameter in encoder.parameters()) parameter.requires_grad = false;
    }

    public override int Channels => encoder.Options.InputChannels;
    public override int ImageSize { get; }
    public override int Dimension => encoder.OutputDimension;
    public override bool HasFeatureMap => true;

    public override Tensor Features(Tensor views, bool spatial)
    {
        using var scope = NewDisposeScope();
        var input = encoder.Options.Architecture == EncoderArchitecture.ResNet ? ResNetEncoder.ChannelsLast(views) : views;
        var features = spatial ? encoder.FeatureMap(input).flatten(2).transpose(1, 2).contiguous() : encoder.forward(input);
        return features.MoveToOuterDisposeScope();
    }
}

/// <summary>An ONNX image encoder as the teacher, run by ONNX Runtime on the CPU.</summary>
internal sealed class OnnxTeacher : DistillationTeacher
{
    private readonly Onnx.ImageEmbedder embedder;
    private readonly TeacherInput input;
    private readonly Tensor imageNetMean = tensor(EncoderOptions.ImageNetMean.ToArray()).view(1, 3, 1, 1);
    private readonly Tensor imageNetStd = tensor(EncoderOptions.ImageNetStd.ToArray()).view(1, 3, 1, 1);

    public OnnxTeacher(string path, TeacherInput input)
    {
        embedder = new Onnx.ImageEmbedder(path, new Onnx.ImageEmbedderOptions { BatchSize = 64 });
        var (channels, height, width) = embedder.InputShape;
        if (height != width) throw new InvalidDataException($"{path}: the teacher takes {height}×{width} images; distillation needs a square input.");
        if (channels is not (1 or 3)) throw new InvalidDataException($"{path}: the teacher takes {channels} channels; 1 or 3 are supported.");
        this.input = input == TeacherInput.Auto
            ? embedder.Producer == "MLNet.Contrastive" ? TeacherInput.Pixels : TeacherInput.ImageNet
            : input;
        if (this.input == TeacherInput.ImageNet && channels != 3)
            throw new InvalidDataException($"{path}: ImageNet normalisation needs 3 input channels; the teacher takes {channels}. Give TeacherInput Pixels or Unit.");
    }

    /// <summary>The units the teacher's input was given in (Auto resolved).</summary>
    public TeacherInput Input => input;

    public override int Channels => embedder.InputShape.Channels;
    public override int ImageSize => embedder.InputShape.Height;
    public override int Dimension => embedder.Dimension;
    public override bool HasFeatureMap => false;

    public override Tensor Features(Tensor views, bool spatial)
    {
        if (spatial) throw new InvalidOperationException("An ONNX teacher gives only its output; distil its Global target.");
        if (views.shape[2] != ImageSize || views.shape[3] != ImageSize)
            throw new InvalidOperationException($"The ONNX teacher takes {ImageSize}×{ImageSize} images (its graph's size); the views are {views.shape[2]}×{views.shape[3]}.");
        using var scope = NewDisposeScope();
        // Held in a local: a Scalar must outlive the native call that reads it.
        using var pixelRange = 255f.ToScalar();
        var scaled = input switch
        {
            TeacherInput.Pixels => views.mul(pixelRange),
            TeacherInput.ImageNet => views.sub(imageNetMean).div(imageNetStd),
            _ => views,
        };
        var values = scaled.contiguous().cpu().data<float>().ToArray();
        var rows = (int)views.shape[0];
        return tensor(embedder.Run(values, rows), [rows, Dimension]).to(views.device).MoveToOuterDisposeScope();
    }
}
