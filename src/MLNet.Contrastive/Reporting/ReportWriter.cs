using System.Globalization;
using System.Net;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Runtime;
using System.Text;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Series;

namespace MLNet.Contrastive.Reporting;

/// <summary>
/// Renders a <see cref="RunReport"/> as one self-contained HTML page: figures are inline SVG (OxyPlot's SVG export,
/// no native graphics), images are PNG data URIs. A small script in the page counts the figures that rendered
/// (non-empty SVG boxes, decoded images) into <c>body[data-rendered]</c>, for headless-browser checks.
/// </summary>
public static class ReportWriter
{
    private const int FigureWidth = 620, FigureHeight = 320;

    // Tableau 10; legends are HTML under each figure, since the SVG export measures text with fixed font metrics.
    private static readonly OxyColor[] Palette = new[] { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" }
        .Select(OxyColor.Parse).ToArray();

    /// <summary>Figure ids in page order; a figure without data shows a note instead of a plot.</summary>
    public static IReadOnlyList<string> FigureIds { get; } =
        ["loss", "learning-rate", "knn", "collapse", "label-efficiency", "projection", "neighbours"];

    /// <summary>Writes the report's HTML page to <paramref name="path"/> (atomically).</summary>
    public static void Write(RunReport report, string path)
    {
        AtomicFile.WriteAllText(path, Html(report));
    }

    /// <summary>The report as one self-contained HTML page (inline SVG).</summary>
    public static string Html(RunReport report)
    {
        var history = report.History;
        var html = new StringBuilder();
        html.Append($$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>{{E(report.Title)}}</title>
            <style>
            body { font-family: sans-serif; margin: 2em; max-width: 1300px; color: #222; }
            figure { display: inline-block; vertical-align: top; margin: 0 1.5em 1.5em 0; }
            figcaption { font-size: 0.9em; color: #555; max-width: {{FigureWidth}}px; }
            table { border-collapse: collapse; margin-bottom: 1.5em; } td, th { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
            td:first-child, th:first-child { text-align: left; }
            .grid img { width: 56px; height: 56px; image-rendering: pixelated; border: 1px solid #ccc; }
            .grid td { padding: 2px; text-align: center; font-size: 0.7em; } .grid td.query { border-right: 3px solid #444; }
            .note { color: #777; font-style: italic; }
            .legend { font-size: 0.85em; max-width: {{FigureWidth}}px; } .legend span { margin-right: 1em; white-space: nowrap; }
            </style></head><body>
            <h1>{{E(report.Title)}}</h1>
            <ul>{{string.Concat(report.Facts.Select(f => $"<li>{E(f)}</li>"))}}</ul>
            """);

        if (report.Features.Count > 0) html.Append(FeatureTable(report));

        html.Append("<h2>Training</h2>");
        Figure(html, "loss", "Loss per step", history.Steps.Count == 0 ? null
            : Line("step", "loss", ("loss", history.Steps.Select(s => new DataPoint(s.Step, s.Loss)))));
        Figure(html, "learning-rate", "Learning rate per step (linear warm-up, then cosine)", history.Steps.Count == 0 ? null
            : Line("step", "learning rate", ("learning rate", history.Steps.Select(s => new DataPoint(s.Step, s.LearningRate)))));
        var knn = history.Monitors.Where(m => m.KnnAccuracy is not null).ToList();
        Figure(html, "knn", "kNN accuracy (k = 200, T = 0.1) on the held-out monitor images, per epoch", knn.Count == 0 ? null
            : Line("epoch", "kNN accuracy", ("kNN", knn.Select(m => new DataPoint(m.Epoch, m.KnnAccuracy!.Value)))),
            "No kNN monitor in this run (pretrain with --monitor-every and labels).");
        Figure(html, "collapse", "Collapse signals per epoch: std of normalised embeddings × √D (1 = spread, 0 = collapsed), " +
            "effective rank / D, uniformity, alignment", history.Monitors.Count == 0 ? null
            : Line("epoch", "value",
                ("std·√D", history.Monitors.Select(m => new DataPoint(m.Epoch, m.StdOfNormalized / m.ExpectedStd))),
                ("effective rank / D", history.Monitors.Select(m => new DataPoint(m.Epoch, m.EffectiveRank * m.ExpectedStd * m.ExpectedStd))),
                ("uniformity", history.Monitors.Select(m => new DataPoint(m.Epoch, m.Uniformity))),
                ("alignment", history.Monitors.Where(m => m.Alignment is not null).Select(m => new DataPoint(m.Epoch, m.Alignment!.Value)))),
            "No monitors in this run (pretrain with --monitor-every).");

        html.Append("<h2>Representation</h2>");
        var samples = report.LabelEfficiency.Select(p => p.Samples).DefaultIfEmpty(1).Max();
        var fractions = report.LabelEfficiency.Select(p => p.LabelFraction).Distinct().Order().Select(LabelEfficiency.Percent).ToList();
        var fractionList = fractions.Count < 2 ? string.Concat(fractions) : $"{string.Join(", ", fractions[..^1])} and {fractions[^1]}";
        Figure(html, "label-efficiency", $"Label efficiency: test accuracy at {fractionList} of the labels of the linear probe on each " +
            "kind of features, and of the networks fine-tuned or trained from scratch where the run has them (the same stratified rows " +
            "for every curve)" + (samples > 1 ? $"; below 100 %, each point is the mean over {samples} label samples" : ""),
            report.LabelEfficiency.Count == 0 ? null : LabelEfficiencyPlot(report),
            "No label-efficiency curve in this run (demo and the benchmark compute it).");
        Figure(html, "projection", $"First two principal components (PCA) of the embeddings of {report.EmbeddedImages}, coloured by class",
            report.Projection.Count == 0 ? null : Scatter(report.Projection));
        html.Append($"""<figure id="neighbours"><figcaption>Nearest neighbours by cosine similarity among {E(report.EmbeddedImages)}: """ +
                    "the query (left), then its 8 nearest images, nearest first</figcaption>");
        html.Append(report.Neighbours.Count == 0 ? """<p class="note">No images in this run.</p>""" : Grid(report.Neighbours));
        html.Append("</figure>");

        html.Append("""
            <script>
            const figures = [...document.querySelectorAll('figure')];
            const drawn = figures.filter(f => [...f.querySelectorAll('svg')].some(s => s.getBBox().width > 0)
              || [...f.querySelectorAll('img')].some(i => i.complete && i.naturalWidth > 0));
            document.body.dataset.rendered = drawn.map(f => f.id).join(' ');
            </script></body></html>
            """);
        return html.ToString();
    }

    private static string FeatureTable(RunReport report)
    {
        var ks = report.Features[0].Clustering.Select(c => c.Clusters).ToList();
        var table = new StringBuilder("<h2>Features on the test images</h2><table><tr><th>Features</th><th>Linear probe</th><th>kNN</th>" +
                                      "<th>Std·√D</th><th>Effective rank</th><th>Uniformity</th>");
        foreach (var k in ks) table.Append(CultureInfo.InvariantCulture, $"<th>k-means K={k}: NMI / ARI / purity</th>");
        table.Append("</tr>");
        foreach (var f in report.Features)
        {
            table.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(f.Features)}</td><td>{f.ProbeAccuracy:P1}</td><td>{f.KnnAccuracy:P1}</td>" +
                $"<td>{f.Collapse.StdOfNormalized / f.Collapse.ExpectedStd:F2}</td><td>{f.Collapse.EffectiveRank:F1}</td><td>{f.Collapse.Uniformity:F2}</td>");
            foreach (var c in f.Clustering) table.Append(CultureInfo.InvariantCulture, $"<td>{c.Nmi:F2} / {c.Ari:F2} / {c.Purity:F2}</td>");
            table.Append("</tr>");
        }
        return table.Append("</table>").ToString();
    }

    internal static void Figure(StringBuilder html, string id, string caption, PlotModel? plot, string? empty = null)
    {
        html.Append($"""<figure id="{id}"><figcaption>{E(caption)}</figcaption>""");
        if (plot is null) html.Append($"""<p class="note">{E(empty ?? "No data in this run.")}</p>""");
        else
        {
            html.Append(new SvgExporter { Width = FigureWidth, Height = FigureHeight, IsDocument = false }.ExportToString(plot));
            if (plot.Series.Count > 1) html.Append(Legend(plot.Series));
        }
        html.Append("</figure>");
    }

    internal static PlotModel Line(string x, string y, params (string Title, IEnumerable<DataPoint> Points)[] series)
    {
        var plot = Model(x, y);
        foreach (var (title, points) in series)
        {
            var line = new LineSeries { Title = title, StrokeThickness = 1.5, Color = Palette[plot.Series.Count % Palette.Length] };
            line.MarkerFill = line.Color;
            line.Points.AddRange(points);
            if (line.Points.Count < 30) line.MarkerType = MarkerType.Circle;
            plot.Series.Add(line);
        }
        return plot;
    }

    private static PlotModel LabelEfficiencyPlot(RunReport report)
    {
        var plot = Model("labelled training images (fraction of all labels, log scale)", "test accuracy");
        plot.Axes[0] = new LogarithmicAxis { Position = AxisPosition.Bottom, Title = plot.Axes[0].Title, MajorGridlineStyle = LineStyle.Dot };
        foreach (var group in report.LabelEfficiency.GroupBy(p => p.Features))
        {
            var color = Palette[plot.Series.Count % Palette.Length];
            var line = new LineSeries { Title = group.Key, MarkerType = MarkerType.Circle, StrokeThickness = 1.5, Color = color, MarkerFill = color };
            line.Points.AddRange(group.OrderBy(p => p.LabelFraction).Select(p => new DataPoint(p.LabelFraction, p.Accuracy)));
            plot.Series.Add(line);
        }
        return plot;
    }

    private static PlotModel Scatter(IReadOnlyList<ProjectedPoint> points)
    {
        var plot = Model("PC 1", "PC 2");
        foreach (var group in points.GroupBy(p => p.Label).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var series = new ScatterSeries { Title = group.Key, MarkerType = MarkerType.Circle, MarkerSize = 2, MarkerFill = Palette[plot.Series.Count % Palette.Length] };
            series.Points.AddRange(group.Select(p => new ScatterPoint(p.X, p.Y)));
            plot.Series.Add(series);
        }
        return plot;
    }

    private static PlotModel Model(string x, string y)
    {
        var plot = new PlotModel { Background = OxyColors.White, DefaultFont = "Arial", DefaultFontSize = 11, IsLegendVisible = false };
        plot.Axes.Add(new LinearAxis { Position = AxisPosition.Bottom, Title = x, MajorGridlineStyle = LineStyle.Dot });
        plot.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = y, MajorGridlineStyle = LineStyle.Dot });
        return plot;
    }

    private static string Legend(IEnumerable<Series> series) =>
        """<div class="legend">""" + string.Concat(series.Select(s =>
        {
            var color = s is ScatterSeries scatter ? scatter.MarkerFill : ((LineSeries)s).Color;
            return $"""<span><b style="color:#{color.R:x2}{color.G:x2}{color.B:x2}">●</b> {E(s.Title)}</span> """;
        })) + "</div>";

    /// <summary>A table of images, one row each; the first image of a row is set apart when <paramref name="firstIsQuery"/>.</summary>
    internal static string Grid(IReadOnlyList<NeighbourRow> rows, bool firstIsQuery = true)
    {
        static string Cell(LabeledImage image, string css = "") =>
            $"""<td{css}><img src="{image.PngDataUri}" alt="{E(image.Label)}"><br>{E(image.Label)}</td>""";
        var grid = new StringBuilder("""<table class="grid">""");
        foreach (var row in rows)
            grid.Append("<tr>").Append(Cell(row.Query, firstIsQuery ? """ class="query" """ : "")).Append(string.Concat(row.Neighbours.Select(n => Cell(n)))).Append("</tr>");
        return grid.Append("</table>").ToString();
    }

    internal static string E(string text) => WebUtility.HtmlEncode(text);
}
