using System.Text;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Reporting;

/// <summary>
/// A self-contained HTML page of images (PNG data URIs, as the run report's neighbour grid): the images chosen for
/// labelling, groups of near-duplicates, a query and its most similar images.
/// </summary>
public static class ImageGallery
{
    /// <summary>One row of the page: a heading and the images (rows of the store) with a caption each.</summary>
    public sealed record Row(string Heading, IReadOnlyList<(int Index, string Caption)> Images);

    /// <summary>The page: <paramref name="title"/>, <paramref name="facts"/> as a list, then one table row per <paramref name="rows"/> entry.</summary>
    public static string Html(string title, IEnumerable<string> facts, ImageStore images, IReadOnlyList<Row> rows, bool firstIsQuery = false)
    {
        var grid = rows.Select(row =>
        {
            var cells = row.Images.Select(image => new LabeledImage(image.Caption, EmbeddingViews.PngDataUri(images, image.Index))).ToList();
            return new NeighbourRow(cells[0], cells.Skip(1).ToList());
        }).ToList();
        var html = new StringBuilder($$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>{{ReportWriter.E(title)}}</title>
            <style>
            body { font-family: sans-serif; margin: 2em; color: #222; }
            .grid img { width: 64px; height: 64px; image-rendering: pixelated; border: 1px solid #ccc; }
            .grid td { padding: 2px; text-align: center; font-size: 0.7em; max-width: 90px; overflow-wrap: anywhere; } .grid td.query { border-right: 3px solid #444; }
            </style></head><body>
            <h1>{{ReportWriter.E(title)}}</h1>
            <ul>{{string.Concat(facts.Select(f => $"<li>{ReportWriter.E(f)}</li>"))}}</ul>
            """);
        for (var r = 0; r < rows.Count; r++)
            html.Append($"<h3>{ReportWriter.E(rows[r].Heading)}</h3>").Append(ReportWriter.Grid([grid[r]], firstIsQuery));
        return html.Append("</body></html>").ToString();
    }

    /// <summary>Writes <see cref="Html"/> to <paramref name="path"/> (atomically).</summary>
    public static void Write(string path, string title, IEnumerable<string> facts, ImageStore images, IReadOnlyList<Row> rows, bool firstIsQuery = false) =>
        Runtime.AtomicFile.WriteAllText(path, Html(title, facts, images, rows, firstIsQuery));
}
