using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Metrics;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Training;

/// <summary>
/// Early stopping for a classifier network (<see cref="Supervised"/>): after every epoch it scores the labelled
/// <c>validation</c> images (eval mode, argmax of the logits), keeps a copy of the weights of the best epoch so far, and
/// stops the run when <c>patience</c> epochs bring no better accuracy. <see cref="RestoreBest"/> puts the best weights back.
/// </summary>
public sealed class EarlyStopping : IEpochCallback, IDisposable
{
    private readonly ImageStore validation;
    private readonly int patience;
    private int epochsSinceBest;
    private Dictionary<string, Tensor>? weights;

    /// <summary>Early stopping on <paramref name="validation"/> (every image labelled) after <paramref name="patience"/> epochs without a better accuracy.</summary>
    public EarlyStopping(ImageStore validation, int patience)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (validation.Count == 0) throw new ArgumentException("The validation set has no images; early stopping scores at least one.", nameof(validation));
        if (validation.Labels is not { } labels || Array.IndexOf(labels, -1) >= 0)
            throw new ArgumentException("Every validation image needs a label.", nameof(validation));
        if (patience <= 0) throw new ArgumentOutOfRangeException(nameof(patience), patience, "The patience must be a positive number of epochs.");
        (this.validation, this.patience) = (validation, patience);
    }

    /// <summary>The best epoch so far (1-based); null before the first.</summary>
    public int? BestEpoch { get; private set; }

    /// <summary>The validation accuracy after each epoch scored.</summary>
    public List<(int Epoch, double Accuracy)> Accuracies { get; } = [];

    /// <inheritdoc/>
    public bool AfterEpoch(PretrainingMethod method, int epoch)
    {
        var network = method as Supervised ?? throw new ArgumentException($"Early stopping scores a classifier network (Supervised), not {method.GetType().Name}.", nameof(method));
        var accuracy = Accuracy(network);
        Accuracies.Add((epoch, accuracy));
        if (BestEpoch is null || accuracy > Accuracies.First(a => a.Epoch == BestEpoch).Accuracy)
        {
            DisposeWeights();
            weights = network.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());
            BestEpoch = epoch;
            epochsSinceBest = 0;
            return false;
        }
        return ++epochsSinceBest >= patience;
    }

    /// <summary>Loads the best epoch's weights into <paramref name="network"/> and puts it in eval mode; false when no epoch was scored.</summary>
    public bool RestoreBest(Supervised network)
    {
        if (weights is null) return false;
        network.load_state_dict(weights);
        network.eval();
        return true;
    }

    private double Accuracy(Supervised network)
    {
        var predicted = Embeddings.FromModule(network, x => network.Logits(x).argmax(1, keepdim: true).to(ScalarType.Float32), 1, validation).Values;
        return (double)predicted.Where((p, i) => (int)p == validation.Labels![i]).Count() / validation.Count;
    }

    private void DisposeWeights()
    {
        if (weights is null) return;
        foreach (var tensor in weights.Values) tensor.Dispose();
        weights = null;
    }

    /// <summary>Frees the copy of the best weights.</summary>
    public void Dispose() => DisposeWeights();
}
