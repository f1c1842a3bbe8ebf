using static TorchSharp.torch;

namespace MLNet.Contrastive.Methods;

/// <summary>
/// A method whose loss couples the batch only through per-view embeddings: views → embedding of each view (encoder
/// and head, row by row independent in eval mode) → one objective over all embeddings (NT-Xent, NCE, triplet, Barlow
/// Twins, VICReg, CLIP, MoCo's query side). Such a method can train with gradient caching (<see cref="Training.PretrainOptions.ChunkSize"/>):
/// the loss's gradient with respect to the embeddings is computed once on the whole batch and back-propagated through
/// one chunk of views at a time, so a batch of any size needs the activations of one chunk only.
/// </summary>
public interface IEmbeddingObjective
{
    /// <summary>
    /// The step's augmented views of images [B, C, H, W], V rows per image ([V·B, C, H, W]; CLIP packs each pair into
    /// one flat row); every random draw of the views happens here.
    /// </summary>
    Tensor Views(Tensor images, StepContext context);

    /// <summary>The trained embeddings [rows, P] of some rows of <see cref="Views"/>' output.</summary>
    Tensor Embed(Tensor views);

    /// <summary>The loss (a scalar) of the embeddings [V·B, P] of all the views, in the order <see cref="Views"/> gave them.</summary>
    Tensor Objective(Tensor embeddings, StepContext context);

    /// <summary>
    /// <see cref="Objective"/>'s value and its gradient with respect to the embeddings [V·B, P], computed without the
    /// objective's graph when the method knows how (SimCLR forms its pairwise similarities in blocks); null lets
    /// autograd do it. Gradient caching uses it so that memory does not grow with the square of the batch.
    /// </summary>
    (Tensor Loss, Tensor Gradient)? ObjectiveWithGradient(Tensor embeddings, StepContext context) => null;

    /// <summary>
    /// Whether <see cref="Objective"/> is a function of the embeddings (and the method's parameters) alone — no queue or
    /// other state that a step changes — so that data-parallel ranks compute it exactly on every rank's embeddings
    /// gathered (<see cref="Training.PretrainOptions.DataParallel"/>): N ranks at batch B/N then train the objective of
    /// one process at batch B. Otherwise each rank's loss couples its own slice only. Default false.
    /// </summary>
    bool ExactAcrossRanks => false;

    /// <summary>The loss of a whole batch in one pass — views, embeddings, objective — for such a method's <see cref="PretrainingMethod.Loss"/>.</summary>
    static Tensor WholeBatchLoss(IEmbeddingObjective method, Tensor images, StepContext context)
    {
        using var scope = NewDisposeScope();
        var embeddings = method.Embed(method.Views(images, context));
        context.Mark("encoder");
        return method.Objective(embeddings, context).MoveToOuterDisposeScope();
    }
}
