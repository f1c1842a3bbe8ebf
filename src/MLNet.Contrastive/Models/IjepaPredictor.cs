using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// I-JEPA's narrow predictor (lightly <c>lightly/models/modules/ijepa.py</c>, <c>IJEPAPredictor</c>; facebookresearch/ijepa
/// <c>VisionTransformerPredictor</c>): the context encoder's tokens projected to a small width with their position
/// embeddings added, one shared mask token plus the position embedding of each target patch appended, a few pre-norm
/// transformer blocks, a LayerNorm, and a projection of the target tokens back to the encoder's width. Position
/// embeddings are learned here (the reference fixes them to 2-D sin-cos); index 0 is the class token's, so the encoder's
/// class token takes part as a context token. Trained with the encoder and kept in the checkpoint; never exported.
/// </summary>
public sealed class IjepaPredictor : Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly Linear predictor_embed;
    private readonly Parameter mask_token;
    private readonly Parameter predictor_pos_embed;
    private readonly ModuleList<VitBlock> predictor_blocks;
    private readonly LayerNorm predictor_norm;
    private readonly Linear predictor_proj;

    /// <summary>A predictor for encoder tokens of width <paramref name="encoderWidth"/> on a grid of <paramref name="patches"/>.</summary>
    public IjepaPredictor(int encoderWidth, int patches, int width, int depth, int heads) : base(nameof(IjepaPredictor))
    {
        predictor_embed = Linear(encoderWidth, width);
        mask_token = Parameter(zeros(1, 1, width));
        predictor_pos_embed = Parameter(zeros(1, patches + 1, width));
        predictor_blocks = VitBlock.Stack(depth, width, heads);
        predictor_norm = LayerNorm(width, VisionTransformer.NormEpsilon);
        predictor_proj = Linear(width, encoderWidth);
        using (no_grad())
        {
            // facebookresearch/ijepa: mask token and linear weights truncated N(0, 0.02²), zero biases.
            VisionTransformer.TruncatedNormal(mask_token);
            VisionTransformer.TruncatedNormal(predictor_pos_embed);
            foreach (var linear in predictor_blocks.SelectMany(b => b.Linears).Append(predictor_embed).Append(predictor_proj))
            {
                VisionTransformer.TruncatedNormal(linear.weight!);
                init.zeros_(linear.bias!);
            }
        }
        RegisterComponents();
    }

    /// <summary>
    /// The predicted encoder tokens of every target block, [M·N, L_tgt, D].
    /// </summary>
    /// <param name="context">The context encoder's tokens [N, 1 + L_ctx, D]: class token first, then the context patches.</param>
    /// <param name="contextIndices">The context patches' row-major indices [N, L_ctx] (int64).</param>
    /// <param name="targetIndices">The target patches' indices [M·N, L_tgt] (int64), block-major: row m·N + i is block m of image i.</param>
    public override Tensor forward(Tensor context, Tensor contextIndices, Tensor targetIndices)
    {
        using var scope = NewDisposeScope();
        var n = context.shape[0];
        if (contextIndices.ndim != 2 || contextIndices.shape[0] != n || contextIndices.shape[1] + 1 != context.shape[1])
            throw new ArgumentException($"The context indices must be [{n}, {context.shape[1] - 1}]; got [{string.Join(", ", contextIndices.shape)}].", nameof(contextIndices));
        if (targetIndices.ndim != 2 || targetIndices.shape[0] % n != 0)
            throw new ArgumentException($"The target indices must be [M·{n}, L_tgt]; got [{string.Join(", ", targetIndices.shape)}].", nameof(targetIndices));
        var blocks = targetIndices.shape[0] / n;
        var x = predictor_embed.forward(context);
        var width = x.shape[2];
        // Positions of the class token (0) and of each patch (1 + its index).
        using var one = 1.ToScalar();
        var positions = predictor_pos_embed.expand(n, -1, -1);
        var contextPositions = cat([positions.narrow(1, 0, 1), Gather(positions, contextIndices.add(one))], 1);
        x = (x + contextPositions).repeat(blocks, 1, 1);
        var targets = mask_token + Gather(predictor_pos_embed.expand(targetIndices.shape[0], -1, -1), targetIndices.add(one));
        x = cat([x, targets], 1);
        foreach (var block in predictor_blocks) x = block.forward(x);
        var predicted = predictor_norm.forward(x).narrow(1, context.shape[1], targetIndices.shape[1]);
        return predictor_proj.forward(predicted).MoveToOuterDisposeScope();

        static Tensor Gather(Tensor tokens, Tensor indices) => tokens.gather(1, indices.unsqueeze(-1).expand(-1, -1, tokens.shape[2]));
    }
}
