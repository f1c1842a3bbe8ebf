using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Stages;

/// <summary>
/// The fitted fine-tuning stage: ML.NET's own transforms — the image chain, ApplyOnnxModel with the fine-tuned network,
/// NormalizeMeanVariance and the LbfgsMaximumEntropy classifier — adding Features (the network's logits, [K]), Score [K] and PredictedLabel
/// (the label's key type). Saving writes that chain, ONNX model included, so the model.zip loads in any ML.NET app
/// as a plain <see cref="TransformerChain{TLastTransformer}"/>.
/// </summary>
public sealed class FineTuningTransformer : ChainStage, IDisposable
{
    private readonly ImageEmbeddingTransformer encoderStage;
    private readonly Supervised network;
    private readonly TransformerChain<ITransformer> classifier;
    private readonly DataViewSchema.Column label;
    private readonly string featureColumnName;

    internal FineTuningTransformer(ImageEmbeddingTransformer encoderStage, Supervised network, TransformerChain<ITransformer> classifier, DataViewSchema.Column label,
        string featureColumnName, IReadOnlyList<(int Epoch, double Accuracy)> validationAccuracy, int? bestEpoch)
        : base(new TransformerChain<ITransformer>(encoderStage.Chain.Concat(classifier).ToArray()))
    {
        (this.encoderStage, this.network, this.classifier, this.label, this.featureColumnName) = (encoderStage, network, classifier, label, featureColumnName);
        ValidationAccuracy = validationAccuracy;
        BestEpoch = bestEpoch;
    }

    /// <summary>The fine-tuning run: encoder (TorchSharp), loss history, throughput.</summary>
    public PretrainResult Training => encoderStage.Pretraining;

    /// <summary>The fine-tuned network, encoder and classifier, eval mode, CPU.</summary>
    public Supervised Network => network;

    /// <summary>The fine-tuned encoder, eval mode, CPU.</summary>
    public ImageEncoder Encoder => encoderStage.Encoder;

    /// <summary>The exported fine-tuned network (pixels → class logits [N, K]) that ApplyOnnxModel applies.</summary>
    public string OnnxPath => encoderStage.OnnxPath;

    /// <summary>The network's accuracy on the validation set after each epoch; empty without a validation set.</summary>
    public IReadOnlyList<(int Epoch, double Accuracy)> ValidationAccuracy { get; }

    /// <summary>The epoch whose weights were kept (the best validation accuracy); null without a validation set (the last weights are kept).</summary>
    public int? BestEpoch { get; }

    /// <summary>
    /// ML.NET's multiclass metrics on decoded images whose labels index the training classes: the fine-tuned network's
    /// logits from TorchSharp (batched, instead of ONNX row by row) through this stage's classifier.
    /// </summary>
    public MulticlassClassificationMetrics Evaluate(MLContext mlContext, ImageStore test)
    {
        if (test.Labels is null) throw new ArgumentException("Evaluation needs labelled images.", nameof(test));
        var scored = classifier.Transform(KeyedFeatures.Create(mlContext, Logits(network, test), label, featureColumnName));
        return mlContext.MulticlassClassification.Evaluate(scored, label.Name);
    }

    /// <summary>The network's class logits [N, K] for every image (eval mode, no gradients, in batches).</summary>
    internal static Embeddings Logits(Supervised network, ImageStore images) =>
        Embeddings.FromModule(network, network.Logits, (int)network.Classifier.out_features, images);


    /// <summary>Releases the ONNX Runtime session and deletes the temporary ONNX file, if the stage made one.</summary>
    public void Dispose() => encoderStage.Dispose();
}
