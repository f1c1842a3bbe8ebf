using System.Diagnostics;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Microsoft.ML;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Training;
using SkiaSharp;

namespace MLNet.Contrastive.Tests.Reporting;

public class ReportTests
{
    [Test]
    public void PcaOfPointsOnAPlaneKeepsTheirDistances()
    {
        // 50 points on a 2-D plane spanned by two orthonormal directions in 32-D (offset from the origin): their 2-D PCA
        // projection is the plane itself up to rotation and reflection, so every pairwise distance is kept.
        const int d = 32;
        var random = new Random(4);
        var u = Unit(Enumerable.Range(0, d).Select(_ => random.NextDouble() - 0.5).ToArray());
        var w = Enumerable.Range(0, d).Select(_ => random.NextDouble() - 0.5).ToArray();
        var v = Unit(w.Select((x, i) => x - w.Zip(u, (a, b) => a * b).Sum() * u[i]).ToArray());
        var plane = Enumerable.Range(0, 50).Select(_ => (A: random.NextDouble() * 4 - 2, B: random.NextDouble() * 2 - 1)).ToArray();
        var values = plane.SelectMany(p => u.Zip(v, (ui, vi) => (float)(p.A * ui + p.B * vi + 3))).ToArray();
        var points = EmbeddingViews.Project(new Embeddings(values, 50, d, Enumerable.Range(0, 50).Select(i => i % 3).ToArray()), ["a", "b", "c"]);

        Assert.That(points.Select(p => p.Label).Take(4), Is.EqualTo(new[] { "a", "b", "c", "a" }));
        for (var i = 0; i < 50; i += 7)
            for (var j = i + 1; j < 50; j += 5)
            {
                var expected = Math.Sqrt(Math.Pow(plane[i].A - plane[j].A, 2) + Math.Pow(plane[i].B - plane[j].B, 2));
                var actual = Math.Sqrt(Math.Pow(points[i].X - points[j].X, 2) + Math.Pow(points[i].Y - points[j].Y, 2));
                Assert.That(actual, Is.EqualTo(expected).Within(1e-3), $"distance {i}–{j}");
            }
    }

    private static double[] Unit(double[] x) => x.Select(e => e / Math.Sqrt(x.Sum(y => y * y))).ToArray();

    [Test]
    public void NeighboursAreTheMostCosineSimilarOtherImagesNearestFirst()
    {
        var images = TestData.SampleTrain(16);
        // Row i points at angle i·10° in a plane: the nearest other rows of row 0 are 1, 2, 3, … in that order.
        var values = Enumerable.Range(0, 16).SelectMany(i => new[] { MathF.Cos(i * MathF.PI / 18), MathF.Sin(i * MathF.PI / 18), 0f }).ToArray();
        var rows = EmbeddingViews.NearestNeighbours(images, new Embeddings(values, 16, 3, images.Labels), queries: 2, neighbours: 3);

        Assert.That(rows, Has.Count.EqualTo(2));
        Assert.That(rows[0].Neighbours.Select(n => n.PngDataUri), Is.EqualTo(new[] { 1, 2, 3 }.Select(i => EmbeddingViews.PngDataUri(images, i))));
        Assert.That(rows[1].Neighbours.Select(n => n.PngDataUri), Is.EqualTo(new[] { 7, 9, 6 }.Select(i => EmbeddingViews.PngDataUri(images, i))).Or
            .EqualTo(new[] { 9, 7, 10 }.Select(i => EmbeddingViews.PngDataUri(images, i))));
        Assert.That(rows[0].Query.Label, Is.EqualTo(images.Labels![0].ToString()));
    }

    [Test]
    public void ImagesBecomePngsWithTheStoredPixels()
    {
        var images = TestData.SampleTrain(3);
        var png = Convert.FromBase64String(EmbeddingViews.PngDataUri(images, 2)["data:image/png;base64,".Length..]);
        using var bitmap = SKBitmap.Decode(png);
        Assert.That((bitmap.Width, bitmap.Height), Is.EqualTo((28, 28)));
        var offset = 2 * 784;
        foreach (var (x, y) in new[] { (0, 0), (14, 14), (20, 7) })
            Assert.That(bitmap.GetPixel(x, y).Red, Is.EqualTo(images.Images(0, images.Count)[offset + y * 28 + x]));
    }

    [TestCase("{\"Steps\":[{\"Step\":1", "not a training history")]
    [TestCase("{\"Steps\":null,\"Epochs\":[],\"Monitors\":[]}", "its steps are missing or hold empty entries")]
    [TestCase("{\"Steps\":[],\"Epochs\":[null],\"Monitors\":[]}", "its epochs are missing or hold empty entries")]
    public void DamagedHistoryIsNamed(string json, string problem)
    {
        using var folder = TestData.NewFolder();
        File.WriteAllText(folder["history.json"], json);
        Assert.That(() => TrainingHistory.Load(folder["history.json"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["history.json"]).And.Message.Contains(problem));
    }

    [Test]
    public void DamagedReportDataIsNamed()
    {
        using var folder = TestData.NewFolder();
        var report = SmallReport();
        report.Save(folder["report.json"]);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(folder["report.json"]))!;
        json["Features"] = new System.Text.Json.Nodes.JsonArray((System.Text.Json.Nodes.JsonNode?)null);
        File.WriteAllText(folder["report.json"], json.ToJsonString());
        Assert.That(() => RunReport.Load(folder["report.json"]),
            Throws.TypeOf<InvalidDataException>().With.Message.EqualTo($"{folder["report.json"]}: damaged report data (a list is missing or holds empty entries)."));
    }

    [Test]
    public void PageHoldsEveryFigureAsWellFormedSvgAndSurvivesARoundTrip()
    {
        using var folder = TestData.NewFolder();
        var report = SmallReport();
        report.Save(folder["report.json"]);
        var html = ReportWriter.Html(RunReport.Load(folder["report.json"]));

        foreach (var id in ReportWriter.FigureIds) Assert.That(html, Does.Contain($"<figure id=\"{id}\">"), id);
        var svgs = Regex.Matches(html, "<svg.*?</svg>", RegexOptions.Singleline).Select(m => XElement.Parse(m.Value)).ToList();
        Assert.That(svgs, Has.Count.EqualTo(ReportWriter.FigureIds.Count - 1), "every figure but the image grid is an SVG plot");
        Assert.That(Regex.Matches(html, "<img src=\"data:image/png;base64,").Count, Is.EqualTo(2 * 9));
        Assert.That(html, Does.Contain("Supervised from scratch").And.Contain("T-shirt"));
        Assert.That(html, Does.Contain("test accuracy at 10 % and 100 % of the labels"), "the run's own fractions");
        Assert.That(html, Does.Not.Contain("label samples"), "one label sample is not a mean");
        report.LabelEfficiency = [.. report.LabelEfficiency.Select(p => p.LabelFraction < 1 ? p with { Samples = 3 } : p)];
        Assert.That(ReportWriter.Html(report), Does.Contain("each point is the mean over 3 label samples"));
    }

    [Test]
    public void RunWithoutMonitorsOrLabelsSaysSoInsteadOfAnEmptyPlot()
    {
        var html = ReportWriter.Html(new RunReport { History = new TrainingHistory { Steps = [new StepRecord(1, 1, 5.0, 1e-3, 0.4)] } });
        Assert.That(html, Does.Contain("No kNN monitor in this run").And.Contain("No monitors in this run").And.Contain("No label-efficiency curve"));
    }

    [Test]
    public void PageRendersEveryFigureInHeadlessChromium()
    {
        // A missing renderer is a failure, not a quiet skip: build/test installs it.
        Assert.That(File.Exists("/usr/bin/chromium"), Is.True,
            "/usr/bin/chromium is missing: install Debian's chromium (apt-get install chromium), or run build/test, which does.");
        using var folder = TestData.NewFolder();
        ReportWriter.Write(SmallReport(), folder["report.html"]);
        var chromium = Process.Start(new ProcessStartInfo("/usr/bin/chromium",
            ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", new Uri(folder["report.html"]).AbsoluteUri])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        _ = chromium.StandardError.ReadToEndAsync();
        var dom = chromium.StandardOutput.ReadToEnd();
        chromium.WaitForExit();
        var rendered = Regex.Match(dom, "data-rendered=\"([^\"]*)\"").Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(rendered, Is.EquivalentTo(ReportWriter.FigureIds));
    }

    private static RunReport SmallReport()
    {
        var images = TestData.SampleTrain(40);
        var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        var history = new TrainingHistory
        {
            Steps = Enumerable.Range(1, 20).Select(s => new StepRecord(s, 1 + s / 10, 5 - s * 0.1, 1e-3 * Math.Min(1, s / 3.0), s)).ToList(),
            Monitors = [new MonitorRecord(1, 0.5, 0.05, 0.088, 20, -1.5, 0.3, false), new MonitorRecord(2, 0.6, 0.06, 0.088, 25, -2, 0.25, false)],
        };
        var report = new RunReport
        {
            Title = "Test run", Facts = ["40 images"], History = history,
            LabelEfficiency = [new("Raw pixels", 0.1, 4, 0.4), new("Raw pixels", 1, 40, 0.6), new("Supervised from scratch", 0.1, 4, 0.3), new("Supervised from scratch", 1, 40, 0.7)],
        };
        EmbeddingViews.Describe(report, images, Embeddings.FromEncoder(encoder, images), "training images",
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]);
        report.Neighbours = report.Neighbours.Take(2).ToList();
        return report;
    }
}
