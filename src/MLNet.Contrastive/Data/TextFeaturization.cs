using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Text;

namespace MLNet.Contrastive.Data;

/// <summary>
/// The one text chain shared by paired training and scoring: ML.NET's NormalizeText (lower case, no punctuation or
/// diacritics) → ProduceHashedWordBags (counts of words and adjacent word pairs, hashed into 2^bits slots). Training
/// reads caption features through this exact chain, so the fitted text stage, made of the same saveable transforms, sees
/// what the text tower saw.
/// </summary>
public static class TextFeaturization
{
    /// <summary>Hash bits by default: 1,024 slots, room for a caption vocabulary of a few hundred words and pairs.</summary>
    public const int DefaultBits = 10;

    /// <summary>The chain from the text column <paramref name="textColumn"/> to <paramref name="featuresColumn"/>, [2^bits] float32; its helper column is named outside <paramref name="taken"/>.</summary>
    internal static (IEstimator<ITransformer> Chain, IReadOnlyList<string> Helpers) Chain(MLContext mlContext, string textColumn, string featuresColumn,
        int bits, ISet<string> taken)
    {
        if (bits is < 1 or > 20) throw new ArgumentOutOfRangeException(nameof(bits), bits, "Text hash bits must be in [1, 20].");
        var normalized = ColumnNames.Unused("NormalizedText", taken);
        var chain = mlContext.Transforms.Text.NormalizeText(normalized, textColumn, TextNormalizingEstimator.CaseMode.Lower,
                keepDiacritics: false, keepPunctuations: false, keepNumbers: true)
            .Append(mlContext.Transforms.Text.ProduceHashedWordBags(featuresColumn, normalized, numberOfBits: bits, ngramLength: 2, useAllLengths: true));
        return (chain, [normalized]);
    }

    /// <summary>The features of <paramref name="texts"/>, [N, 2^bits] row-major.</summary>
    public static float[] Featurize(MLContext mlContext, IReadOnlyList<string> texts, int bits = DefaultBits)
    {
        const string text = "Text", features = "Features";
        var data = mlContext.Data.LoadFromEnumerable(texts.Select(t => new TextRow { Text = t }));
        var (chain, _) = Chain(mlContext, text, features, bits, new HashSet<string> { text, features });
        var transformed = chain.Fit(data).Transform(data);
        var size = 1 << bits;
        var result = new float[(long)texts.Count * size];
        using var cursor = transformed.GetRowCursor([transformed.Schema[features]]);
        var getter = cursor.GetGetter<VBuffer<float>>(transformed.Schema[features]);
        var row = default(VBuffer<float>);
        for (var i = 0; cursor.MoveNext(); i++)
        {
            getter(ref row);
            row.CopyTo(result.AsSpan(i * size, size));
        }
        return result;
    }

    private sealed class TextRow
    {
        public string Text { get; set; } = "";
    }
}
