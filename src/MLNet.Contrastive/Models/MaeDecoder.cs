using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Models;

/// <summary>
/// MAE's light decoder (facebookresearch/mae <c>models_mae.py</c>, <c>forward_decoder</c>): the encoder's tokens of the
/// visible patches projected to the decoder's width, a shared learned mask token in every masked patch's place, the
/// tokens put back in patch order, decoder position embeddings added (learned here, MAE fixes them to 2-D sin-cos), a
/// few pre-norm transformer blocks, a LayerNorm and a linear layer to each patch's pixels. The class token is dropped
/// from the output. Trained with the encoder and kept in the checkpoint; exported only inside the reconstruction energy's graph.
/// </summary>
public sealed class MaeDecoder : Module<Tensor, Tensor, Tensor>
{
    private readonly Linear decoder_embed;
    private readonly Parameter mask_token;
    private readonly Parameter decoder_pos_embed;
    private readonly ModuleList<VitBlock> decoder_blocks;
    private readonly LayerNorm decoder_norm;
    private readonly Linear decoder_pred;

    /// <summary>A decoder from encoder tokens of width <paramref name="encoderWidth"/> to <paramref name="patchPixels"/> pixels per patch of a grid of <paramref name="patches"/>.</summary>
    public MaeDecoder(int encoderWidth, int patches, int patchPixels, int width, int depth, int heads) : base(nameof(MaeDecoder))
    {
        decoder_embed = Linear(encoderWidth, width);
        mask_token = Parameter(zeros(1, 1, width));
        decoder_pos_embed = Parameter(zeros(1, patches + 1, width));
        decoder_blocks = VitBlock.Stack(depth, width, heads);
        decoder_norm = LayerNorm(width, VisionTransformer.NormEpsilon);
        decoder_pred = Linear(width, patchPixels);
        using (no_grad())
        {
            // MAE: mask token N(0, 0.02²), linear layers Xavier-uniform with zero biases.
            VisionTransformer.TruncatedNormal(mask_token);
            VisionTransformer.TruncatedNormal(decoder_pos_embed);
            foreach (var linear in decoder_blocks.SelectMany(b => b.Linears).Append(decoder_embed).Append(decoder_pred))
            {
                init.xavier_uniform_(linear.weight!);
                init.zeros_(linear.bias!);
            }
        }
        RegisterComponents();
    }

    internal Linear Embed => decoder_embed;
    internal Tensor MaskToken => mask_token;
    internal Tensor PositionEmbedding => decoder_pos_embed;
    internal IReadOnlyList<VitBlock> Blocks => [.. decoder_blocks];
    internal LayerNorm Norm => decoder_norm;
    internal Linear Prediction => decoder_pred;

    /// <summary>
    /// Pixels of every patch [N, L, P²·C] from the encoder's tokens [N, 1 + L_keep, D] (class token first, visible patches
    /// in shuffled order) and the permutation <paramref name="restore"/> [N, L] that puts [visible…, masked…] back in patch order.
    /// </summary>
    public override Tensor forward(Tensor tokens, Tensor restore)
    {
        using var scope = NewDisposeScope();
        var x = decoder_embed.forward(tokens);
        var (n, width, patches) = (x.shape[0], x.shape[2], restore.shape[1]);
        if (decoder_pos_embed.shape[1] != patches + 1)
            throw new ArgumentException($"The decoder was built for {decoder_pos_embed.shape[1] - 1} patches; got {patches}.", nameof(restore));
        var masked = mask_token.expand(n, patches - (x.shape[1] - 1), -1);
        var ordered = cat([x.narrow(1, 1, x.shape[1] - 1), masked], 1).gather(1, restore.unsqueeze(-1).expand(-1, -1, width));
        x = cat([x.narrow(1, 0, 1), ordered], 1) + decoder_pos_embed;
        foreach (var block in decoder_blocks) x = block.forward(x);
        return decoder_pred.forward(decoder_norm.forward(x)).narrow(1, 1, patches).MoveToOuterDisposeScope();
    }
}
