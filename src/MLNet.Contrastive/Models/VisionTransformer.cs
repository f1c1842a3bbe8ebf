using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// A Vision Transformer (Dosovitskiy et al. 2021) in timm's layout and names: patch embedding (a P × P convolution of
/// stride P), a class token, learned position embeddings, pre-norm blocks (LayerNorm → multi-head self-attention →
/// residual, LayerNorm → MLP with exact GELU → residual), a final LayerNorm. <see cref="forward"/> and <see cref="Embed"/>
/// both give the class token, [N, D] with D = <see cref="EncoderOptions.HiddenDimension"/>. Input [N, C, H, W] float32 in
/// [0, 1] with H and W multiples of the patch size; at another size than <see cref="EncoderOptions.ImageSize"/> the
/// position embeddings are interpolated (bicubic, as timm's <c>resample_abs_pos_embed</c>).
/// State-dict names are timm's (<c>patch_embed.proj</c>, <c>cls_token</c>, <c>pos_embed</c>, <c>blocks.i.norm1</c>,
/// <c>blocks.i.attn.qkv</c>, <c>blocks.i.attn.proj</c>, <c>blocks.i.norm2</c>, <c>blocks.i.mlp.fc1</c>, <c>blocks.i.mlp.fc2</c>,
/// <c>norm</c>); <see cref="TorchvisionWeights"/> maps torchvision's onto them.
/// </summary>
public sealed class VisionTransformer : ImageEncoder
{
    /// <summary>LayerNorm's epsilon in timm's and torchvision's ViTs.</summary>
    internal const double NormEpsilon = 1e-6;

    private readonly Tensor mean;
    private readonly Tensor std;
    private readonly Sequential patch_embed;
    private readonly Parameter cls_token;
    private readonly Parameter pos_embed;
    private readonly ModuleList<VitBlock> blocks;
    private readonly LayerNorm norm;

    /// <summary>A randomly initialised ViT (position embeddings and class token N(0, 0.02²), linear layers truncated N(0, 0.02²) as timm).</summary>
    public VisionTransformer(EncoderOptions options) : base(nameof(VisionTransformer), options)
    {
        if (options.Architecture != EncoderArchitecture.VisionTransformer)
            throw new ArgumentException($"A Vision Transformer cannot take {options.Architecture} options; use ImageEncoder.Create.", nameof(options));
        var width = options.HiddenDimension;
        var grid = options.ImageSize / options.PatchSize;
        mean = tensor(options.Mean).view(1, -1, 1, 1);
        std = tensor(options.Std).view(1, -1, 1, 1);
        patch_embed = Sequential(("proj", Conv2d(options.InputChannels, width, options.PatchSize, stride: options.PatchSize)));
        cls_token = Parameter(zeros(1, 1, width));
        pos_embed = Parameter(zeros(1, grid * grid + 1, width));
        blocks = new ModuleList<VitBlock>();
        for (var i = 0; i < options.Depth; i++) blocks.Add(new VitBlock(width, options.Heads, options.MlpDimension));
        norm = LayerNorm(width, NormEpsilon);
        using (no_grad())
        {
            TruncatedNormal(pos_embed);
            TruncatedNormal(cls_token);
            foreach (var block in blocks)
                foreach (var linear in block.Linears)
                {
                    TruncatedNormal(linear.weight!);
                    init.zeros_(linear.bias!);
                }
        }
        register_buffer("mean", mean, persistent: true);
        register_buffer("std", std, persistent: true);
        RegisterComponents();
    }

    /// <summary>
    /// N(0, 0.02²) cut at ±2σ, timm's initialisation (drawn and clamped: TorchSharp 0.107's trunc_normal_ left values
    /// outside that range and gave non-finite outputs here).
    /// </summary>
    internal static void TruncatedNormal(Tensor tensor)
    {
        const double std = 0.02;
        using var low = (-2 * std).ToScalar();
        using var high = (2 * std).ToScalar();
        init.normal_(tensor, 0, std);
        tensor.clamp_(low, high);
    }

    internal override Tensor NormalizationMean => mean;
    internal override Tensor NormalizationStd => std;
    internal Conv2d PatchEmbedding => (Conv2d)patch_embed[0];
    internal Tensor ClassToken => cls_token;
    internal Tensor PositionEmbedding => pos_embed;
    internal IReadOnlyList<VitBlock> Blocks => [.. blocks];
    internal LayerNorm Norm => norm;

    /// <summary>The class token after the last norm, or the mean of the patch tokens (<see cref="EncoderOptions.VitPooling"/>): [N, C, H, W] → [N, D].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var tokens = Tokens(images);
        return (Options.VitPooling == VitPooling.MeanPatchTokens ? tokens.narrow(1, 1, tokens.shape[1] - 1).mean([1]) : tokens.select(1, 0)).MoveToOuterDisposeScope();
    }

    /// <summary>The embedding, as <see cref="forward"/>: [N, C, H, W] → [N, D].</summary>
    public override Tensor Embed(Tensor images) => forward(images);

    /// <inheritdoc/>
    internal override Tensor FeatureMap(Tensor images)
    {
        using var scope = NewDisposeScope();
        var tokens = Tokens(images);
        var (rows, columns) = (images.shape[2] / Options.PatchSize, images.shape[3] / Options.PatchSize);
        return tokens.narrow(1, 1, rows * columns).transpose(1, 2).reshape(images.shape[0], Options.HiddenDimension, rows, columns).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Every token after the last norm, class token first: [N, C, H, W] → [N, 1 + (H/P)(W/P), D]. With
    /// <paramref name="patchMask"/> [N, L] (1 or true on masked patches, row-major) the masked patches' embeddings are
    /// replaced by <paramref name="maskToken"/> [D] before the position embeddings are added (iBOT's and lightly's
    /// <c>MaskedVisionTransformer</c>); the whole sequence still goes through the blocks.
    /// </summary>
    internal Tensor Tokens(Tensor images, Tensor? patchMask = null, Tensor? maskToken = null)
    {
        var (height, width) = (images.shape[2], images.shape[3]);
        var patch = Options.PatchSize;
        if (height % patch != 0 || width % patch != 0)
            throw new ArgumentException($"Images of {height}×{width} px do not split into {patch}×{patch} patches; give the ViT sides that are multiples of {patch}.", nameof(images));
        var x = patch_embed.forward((images - mean) / std).flatten(2).transpose(1, 2);
        if (patchMask is not null)
        {
            if (maskToken is null || maskToken.numel() != x.shape[2])
                throw new ArgumentException($"A patch mask needs a mask token of {x.shape[2]} values.", nameof(maskToken));
            if (patchMask.ndim != 2 || patchMask.shape[0] != x.shape[0] || patchMask.shape[1] != x.shape[1])
                throw new ArgumentException($"The patch mask must be [N = {x.shape[0]}, L = {x.shape[1]}]; got [{string.Join(", ", patchMask.shape)}].", nameof(patchMask));
            x = where(patchMask.to_type(ScalarType.Bool).unsqueeze(-1), maskToken.view(1, 1, -1).to_type(x.dtype), x);
        }
        x = cat([cls_token.expand(x.shape[0], -1, -1), x], 1) + Positions(height / patch, width / patch);
        foreach (var block in blocks) x = block.forward(x);
        return norm.forward(x);
    }

    /// <summary>
    /// iBOT's student pass: every token after the last norm, [N, C, H, W] → [N, 1 + L, D], with the patches set in
    /// <paramref name="patchMask"/> [N, L] (1 or true = masked, row-major) seen as <paramref name="maskToken"/> [D].
    /// </summary>
    public Tensor EncodeMasked(Tensor images, Tensor patchMask, Tensor maskToken)
    {
        using var scope = NewDisposeScope();
        return Tokens(images, patchMask, maskToken).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// MAE's encoder pass (facebookresearch/mae <c>forward_encoder</c>): only the visible patches, [N, C, H, W] with
    /// <paramref name="keepIndices"/> [N, L_keep] (int64, patch indices in row-major order) → the class token and the kept
    /// patches' tokens after the last norm, [N, 1 + L_keep, D], in the order of <paramref name="keepIndices"/>.
    /// </summary>
    public Tensor EncodeVisible(Tensor images, Tensor keepIndices)
    {
        using var scope = NewDisposeScope();
        var (height, width) = (images.shape[2], images.shape[3]);
        var patch = Options.PatchSize;
        if (height % patch != 0 || width % patch != 0)
            throw new ArgumentException($"Images of {height}×{width} px do not split into {patch}×{patch} patches; give the ViT sides that are multiples of {patch}.", nameof(images));
        if (keepIndices.ndim != 2 || keepIndices.shape[0] != images.shape[0])
            throw new ArgumentException($"The kept patches must be [N = {images.shape[0]}, L_keep]; got [{string.Join(", ", keepIndices.shape)}].", nameof(keepIndices));
        var positions = Positions(height / patch, width / patch);
        var x = patch_embed.forward((images - mean) / std).flatten(2).transpose(1, 2) + positions.narrow(1, 1, positions.shape[1] - 1);
        x = x.gather(1, keepIndices.unsqueeze(-1).expand(-1, -1, x.shape[2]));
        x = cat([(cls_token + positions.narrow(1, 0, 1)).expand(x.shape[0], -1, -1), x], 1);
        foreach (var block in blocks) x = block.forward(x);
        return norm.forward(x).MoveToOuterDisposeScope();
    }

    /// <summary>The position embeddings for a rows × columns grid of patches, [1, 1 + rows·columns, D].</summary>
    internal Tensor Positions(long rows, long columns)
    {
        var grid = Options.ImageSize / Options.PatchSize;
        if (rows == grid && columns == grid) return pos_embed;
        return Resample(pos_embed, grid, rows, columns);
    }

    /// <summary>
    /// Position embeddings laid out for a grid × grid of patches, resampled to rows × columns (bicubic, corners not
    /// aligned, as timm's <c>resample_abs_pos_embed</c>); the class token's own embedding is kept. [1, 1 + grid², D] → [1, 1 + rows·columns, D].
    /// </summary>
    internal static Tensor Resample(Tensor positions, long grid, long rows, long columns)
    {
        var width = positions.shape[2];
        var patches = positions.narrow(1, 1, grid * grid).reshape(1, grid, grid, width).permute(0, 3, 1, 2);
        var resized = functional.interpolate(patches, [rows, columns], mode: InterpolationMode.Bicubic, align_corners: false);
        return cat([positions.narrow(1, 0, 1), resized.permute(0, 2, 3, 1).reshape(1, rows * columns, width)], 1);
    }
}

/// <summary>A pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)). [N, T, D] → [N, T, D].</summary>
internal sealed class VitBlock : Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1, norm2;
    private readonly VitAttention attn;
    private readonly VitMlp mlp;

    public VitBlock(int width, int heads, int mlpWidth) : base(nameof(VitBlock))
    {
        norm1 = LayerNorm(width, VisionTransformer.NormEpsilon);
        attn = new VitAttention(width, heads);
        norm2 = LayerNorm(width, VisionTransformer.NormEpsilon);
        mlp = new VitMlp(width, mlpWidth);
        RegisterComponents();
    }

    /// <summary><paramref name="depth"/> blocks of width <paramref name="width"/> with an MLP 4× as wide (the decoders' and predictors' stacks).</summary>
    internal static ModuleList<VitBlock> Stack(int depth, int width, int heads)
    {
        var blocks = new ModuleList<VitBlock>();
        for (var i = 0; i < depth; i++) blocks.Add(new VitBlock(width, heads, 4 * width));
        return blocks;
    }

    internal LayerNorm Norm1 => norm1;
    internal LayerNorm Norm2 => norm2;
    internal VitAttention Attention => attn;
    internal VitMlp Mlp => mlp;
    internal IEnumerable<Linear> Linears => [attn.Qkv, attn.Proj, mlp.Fc1, mlp.Fc2];

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + attn.forward(norm1.forward(x));
        return (x + mlp.forward(norm2.forward(x))).MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head self-attention with one qkv projection (rows q, then k, then v, as timm and torchvision's in_proj). [N, T, D] → [N, T, D].</summary>
internal sealed class VitAttention : Module<Tensor, Tensor>
{
    private readonly Linear qkv, proj;

    public VitAttention(int width, int heads) : base(nameof(VitAttention))
    {
        Heads = heads;
        qkv = Linear(width, 3 * width);
        proj = Linear(width, width);
        RegisterComponents();
    }

    internal int Heads { get; }
    internal Linear Qkv => qkv;
    internal Linear Proj => proj;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (n, tokens, width) = (x.shape[0], x.shape[1], x.shape[2]);
        // [N, T, 3D] → [3, N, heads, T, D/heads].
        var parts = qkv.forward(x).reshape(n, tokens, 3, Heads, width / Heads).permute(2, 0, 3, 1, 4);
        var attended = functional.scaled_dot_product_attention(parts[0], parts[1], parts[2]);
        return proj.forward(attended.transpose(1, 2).reshape(n, tokens, width)).MoveToOuterDisposeScope();
    }
}

/// <summary>fc1 → exact GELU → fc2. [N, T, D] → [N, T, D].</summary>
internal sealed class VitMlp : Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;

    public VitMlp(int width, int hidden) : base(nameof(VitMlp))
    {
        fc1 = Linear(width, hidden);
        fc2 = Linear(hidden, width);
        RegisterComponents();
    }

    internal Linear Fc1 => fc1;
    internal Linear Fc2 => fc2;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return fc2.forward(functional.gelu(fc1.forward(x))).MoveToOuterDisposeScope();
    }
}
