using System.Text;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using OxyPlot;

namespace MLNet.Contrastive.Reporting;

/// <summary>
/// The page of a reconstruction-energy scoring (<see cref="ReconstructionEnergy"/>): the distribution of the scored
/// images' energies beside the reference images', and the highest-energy images each with what the MAE saw (hidden
/// patches grey) and what it made of them.
/// </summary>
public static class EnergyPage
{
    /// <summary>Images shown, highest energy first. Default 40.</summary>
    public const int DefaultShown = 40;

    /// <summary>Bins of the histogram.</summary>
    private const int Bins = 40;

    /// <summary>
    /// Writes the page to <paramref name="path"/> (atomically): <paramref name="images"/> with their
    /// <paramref name="energies"/> and <paramref name="names"/>, and <paramref name="referenceEnergies"/> when known.
    /// </summary>
    public static void Write(string path, ReconstructionEnergy energy, ImageStore images, IReadOnlyList<string> names, float[] energies,
        float[]? referenceEnergies, IEnumerable<string> facts, int shown = DefaultShown)
    {
        if (energies.Length != images.Count || names.Count != images.Count)
            throw new ArgumentException($"{images.Count} images need as many energies and names; got {energies.Length} and {names.Count}.", nameof(energies));
        var html = new StringBuilder($$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Reconstruction energy</title>
            <style>
            body { font-family: sans-serif; margin: 2em; color: #222; }
            figure { display: inline-block; margin: 0 1.5em 1.5em 0; } figcaption { font-size: 0.9em; color: #555; max-width: 640px; }
            .legend { font-size: 0.85em; } .legend span { margin-right: 1em; }
            .grid img { width: 64px; height: 64px; image-rendering: pixelated; border: 1px solid #ccc; }
            .grid td { padding: 2px; text-align: center; font-size: 0.7em; max-width: 90px; overflow-wrap: anywhere; } .grid td.query { border-right: 3px solid #444; }
            </style></head><body>
            <h1>Reconstruction energy</h1>
            <ul>{{string.Concat(facts.Select(f => $"<li>{ReportWriter.E(f)}</li>"))}}</ul>
            """);

        // Fractions per bin up to the 99th percentile of all energies (higher ones counted in the last bin), so that a few
        // very high energies do not squeeze the rest into one bin.
        var all = energies.Concat(referenceEnergies ?? []).Order().ToArray();
        var (low, high) = (all[0], all[(int)(0.99 * (all.Length - 1))]);
        if (!(high > low)) high = low + 1;
        IEnumerable<DataPoint> Histogram(float[] values)
        {
            var counts = new int[Bins];
            foreach (var v in values) counts[Math.Clamp((int)((v - low) / (high - low) * Bins), 0, Bins - 1)]++;
            return counts.SelectMany((c, b) => new[]
            {
                new DataPoint(low + (high - low) * b / Bins, (double)c / values.Length), new DataPoint(low + (high - low) * (b + 1) / Bins, (double)c / values.Length),
            });
        }
        var series = new List<(string, IEnumerable<DataPoint>)> { ($"scored images ({energies.Length:N0})", Histogram(energies)) };
        if (referenceEnergies is { Length: > 0 }) series.Add(($"reference images ({referenceEnergies.Length:N0})", Histogram(referenceEnergies)));
        ReportWriter.Figure(html, "histogram", $"Energies, fraction of images per bin (energies above {high:F1}, the 99th percentile, are counted in the last bin)",
            ReportWriter.Line("energy", "fraction of images", [.. series]));

        var top = Enumerable.Range(0, images.Count).OrderByDescending(i => energies[i]).Take(shown).ToArray();
        var chosen = images.Subset(top);
        var (masked, reconstructed) = energy.Reconstructions(chosen);
        var rows = top.Select((image, row) => new NeighbourRow(
            new LabeledImage($"{names[image]}: {energies[image]:F1}", EmbeddingViews.PngDataUri(chosen, row)),
            [new LabeledImage("seen by the MAE", EmbeddingViews.PngDataUri(masked, row)), new LabeledImage("reconstructed", EmbeddingViews.PngDataUri(reconstructed, row))])).ToList();
        html.Append($"<h2>The {top.Length} highest energies: the image, what one mask leaves visible, the reconstruction</h2>").Append(ReportWriter.Grid(rows));
        Runtime.AtomicFile.WriteAllText(path, html.Append("</body></html>").ToString());
    }
}
