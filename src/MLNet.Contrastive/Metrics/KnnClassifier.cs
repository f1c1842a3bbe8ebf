using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Metrics;

/// <summary>
/// The standard SSL kNN monitor (Wu et al. 2018; lightly's knn_predict): cosine similarity to the training
/// embeddings, the k nearest vote for their class with weight exp(similarity / T).
/// </summary>
public static class KnnClassifier
{
    /// <summary>Neighbours that vote for a row's class.</summary>
    public const int DefaultK = 200;
    /// <summary>Temperature of the similarity weights exp(s / T).</summary>
    public const double DefaultTemperature = 0.1;

    /// <summary>Predicted class per test row.</summary>
    public static int[] Predict(Embeddings train, Embeddings test, int k = DefaultK, double temperature = DefaultTemperature)
    {
        if (train.Labels is null) throw new ArgumentException("kNN needs labelled training embeddings.", nameof(train));
        if (train.Dimension != test.Dimension) throw new ArgumentException($"Train and test embeddings differ in dimension ({train.Dimension} vs {test.Dimension}).");
        TorchRuntime.Initialize();
        k = Math.Min(k, train.Count);
        var classes = train.Labels.Max() + 1;
        using var scope = NewDisposeScope();
        // Scalars held in locals outlive the native calls that read them (see CollectionPause).
        using var epsilon = 1e-12.ToScalar();
        using var temperatureScalar = temperature.ToScalar();
        // Normalised in place: at 27,648-d (96 px RGB pixels) each copy of the bank is 1.1 GB per 10,000 rows.
        var bank = tensor(train.Values, new long[] { train.Count, train.Dimension });
        bank.div_(bank.norm(1, keepdim: true).clamp_min(epsilon));
        var bankLabels = tensor(train.Labels.Select(l => (long)l).ToArray());
        var predictions = new int[test.Count];
        const int chunk = 512;
        for (var start = 0; start < test.Count; start += chunk)
        {
            using var pause = CollectionPause.Begin();
            using var inner = NewDisposeScope();
            var rows = Math.Min(chunk, test.Count - start);
            var query = F.normalize(tensor(test.Values.AsSpan(start * test.Dimension, rows * test.Dimension).ToArray(),
                new long[] { rows, test.Dimension }), dim: 1);
            var (similarity, index) = query.mm(bank.t()).topk(k, dim: 1);
            var weights = similarity.div(temperatureScalar).exp();
            var votes = zeros(rows, classes).scatter_add_(1, bankLabels[index], weights);
            votes.argmax(1).to_type(ScalarType.Int32).data<int>().CopyTo(predictions, start);
        }
        return predictions;
    }

    /// <summary>Fraction of test rows whose kNN prediction equals their label.</summary>
    public static double Accuracy(Embeddings train, Embeddings test, int k = DefaultK, double temperature = DefaultTemperature)
    {
        if (test.Labels is null) throw new ArgumentException("kNN accuracy needs labelled test embeddings.", nameof(test));
        var predicted = Predict(train, test, k, temperature);
        return predicted.Where((p, i) => p == test.Labels[i]).Count() / (double)test.Count;
    }
}
