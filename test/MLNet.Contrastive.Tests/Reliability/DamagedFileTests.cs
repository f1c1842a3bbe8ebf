using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Reliability;

/// <summary>
/// Fault injection on every kind of file the library reads: each good file is damaged 24 seeded ways (cut short,
/// bits flipped, a run overwritten or zeroed, junk appended) and read the way users read it. Each read must either
/// succeed (damage no format can detect, e.g. a changed pixel or weight of an ONNX file) or fail with an error that
/// names the file; an exception of another kind, or a native abort of the test process, fails the suite.
/// </summary>
public class DamagedFileTests
{
    private const int DamagesPerKind = 24;
    private TestData.TempFolder folder = null!;
    private readonly Dictionary<string, string> good = [];
    private ImageStore sample = null!;

    [OneTimeSetUp]
    public void WriteGoodFiles()
    {
        folder = TestData.NewFolder();
        sample = TestData.SampleTrain(128);
        var options = new PretrainOptions { Run = { Epochs = 1, BatchSize = 64, Seed = 1 }, CheckpointPath = folder["checkpoint.bin"],
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] } };
        var run = new Pretrainer(options).Fit(sample);
        good["checkpoint"] = options.CheckpointPath;
        EncoderOnnxExporter.Export(run.Encoder, good["encoder.onnx"] = folder["encoder.onnx"], new EncoderOnnxOptions { Height = 28, Width = 28 });
        run.History.Save(folder.Path);
        good["history.json"] = folder["history.json"];
        new RunReport { History = run.History, Facts = ["a fact"] }.Save(good["report.json"] = folder["report.json"]);

        var idx = File.ReadAllBytes(TestData.TrainImages);
        File.WriteAllBytes(good["idx images"] = folder["train-images-idx3-ubyte.gz"], idx);
        File.WriteAllBytes(good["idx labels"] = folder["train-labels-idx1-ubyte.gz"], File.ReadAllBytes(TestData.TrainLabels));

        using (var image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, sample.Bgra(0)))
        {
            image.Save(good["png"] = folder["image.png"]);
            image.Save(good["jpeg"] = folder["image.jpg"]);
        }

        var mlContext = new MLContext(0);
        var rows = TestData.WriteSampleImages(folder, 64);
        var images = mlContext.Data.LoadFromEnumerable(rows);
        var stage = mlContext.SelfSupervised().SimClr(new ImageEmbeddingEstimator.Options
        {
            InputColumnName = nameof(TestData.ImageRow.ImagePath),
            Pretrain = new PretrainOptions { Run = { Epochs = 1, BatchSize = 32, Seed = 1 }, Encoder = options.Encoder },
        }).Fit(images);
        mlContext.Model.Save(stage, images.Schema, good["model.zip"] = folder["model.zip"]);
        modelRows = rows.Take(4).ToList();
    }

    private List<TestData.ImageRow> modelRows = null!;

    [OneTimeTearDown]
    public void RemoveFolder() => folder.Dispose();

    private static IEnumerable<string> Kinds() =>
        ["checkpoint", "idx images", "idx labels", "png", "jpeg", "model.zip", "encoder.onnx", "history.json", "report.json"];

    [TestCaseSource(nameof(Kinds))]
    public void DamagedFilesAreReadOrRefusedByName(string kind)
    {
        var original = File.ReadAllBytes(good[kind]);
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < DamagesPerKind; i++)
        {
            var random = new Random(kind.Sum(c => c) * 100 + i);
            var (how, bytes) = Damage(original, i % 6, random);
            var damaged = folder[$"damaged-{i}{Path.GetExtension(good[kind])}"];
            if (kind.StartsWith("idx", StringComparison.Ordinal)) damaged = folder[$"damaged-{i}-" + Path.GetFileName(good[kind])];
            File.WriteAllBytes(damaged, bytes);
            string outcome;
            try
            {
                Read(kind, damaged);
                outcome = "read";
                TestContext.Out.WriteLine($"{kind} read after: {how}");
            }
            catch (Exception e) when (e.Message.Contains(Path.GetFileName(damaged), StringComparison.Ordinal))
            {
                outcome = "refused by name";
            }
            catch (Exception e)
            {
                Assert.Fail($"{kind} {how}: {e.GetType().Name} that does not name the file: {e.Message}");
                throw;
            }
            finally
            {
                File.Delete(damaged);
            }
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        TestContext.Out.WriteLine($"{kind}: {string.Join(", ", outcomes.OrderBy(o => o.Key).Select(o => $"{o.Value} {o.Key}"))}");
        Assert.That(outcomes.Values.Sum(), Is.EqualTo(DamagesPerKind));
    }

    /// <summary>Reads a file of <paramref name="kind"/> the way a user's program or the CLI does.</summary>
    private void Read(string kind, string path)
    {
        switch (kind)
        {
            case "checkpoint":
                // Resuming reads every section: header, weights, optimizer state and the generator's state.
                new Pretrainer(new PretrainOptions { Run = { Epochs = 2, BatchSize = 64, Seed = 1 }, CheckpointPath = path, Resume = true }).Fit(sample);
                break;
            case "idx images":
                ImageStore.Load(path, good["idx labels"]);
                break;
            case "idx labels":
                ImageStore.Load(good["idx images"], path);
                break;
            case "png" or "jpeg":
                var one = folder[$"one-{Guid.NewGuid():N}"];
                Directory.CreateDirectory(one);
                File.Copy(path, Path.Combine(one, Path.GetFileName(path)));
                try { ImageStore.Load(one); }
                finally { Directory.Delete(one, recursive: true); }
                break;
            case "model.zip":
                var mlContext = new MLContext();
                var model = SavedModel.Load(mlContext, path, out _);
                var scored = model.Transform(mlContext.Data.LoadFromEnumerable(modelRows));
                _ = scored.GetColumn<VBuffer<float>>("Embedding").ToList();
                break;
            case "encoder.onnx":
                using (var embedder = new ImageEmbedder(path)) embedder.Embed(sample);
                break;
            case "history.json":
                TrainingHistory.Load(path);
                break;
            case "report.json":
                RunReport.Load(path);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    private static (string How, byte[] Bytes) Damage(byte[] original, int mode, Random random)
    {
        var bytes = (byte[])original.Clone();
        switch (mode)
        {
            case 0:
                var length = random.Next(original.Length);
                return ($"cut to {length} bytes", bytes[..length]);
            case 1:
                var bit = random.Next(original.Length * 8);
                bytes[bit / 8] ^= (byte)(1 << (bit % 8));
                return ($"bit {bit} flipped", bytes);
            case 2:
                var at = Enumerable.Range(0, 8).Select(_ => random.Next(original.Length)).ToArray();
                foreach (var i in at) bytes[i] = (byte)random.Next(256);
                return ($"bytes {string.Join(",", at)} replaced", bytes);
            case 3:
                var start = random.Next(original.Length);
                random.NextBytes(bytes.AsSpan(start, Math.Min(256, original.Length - start)));
                return ($"256 bytes at {start} overwritten", bytes);
            case 4:
                var zeroFrom = random.Next(original.Length);
                bytes.AsSpan(zeroFrom, Math.Min(4096, original.Length - zeroFrom)).Clear();
                return ($"4 KiB at {zeroFrom} zeroed", bytes);
            default:
                var junk = new byte[1024];
                random.NextBytes(junk);
                return ("1 KiB appended", [.. bytes, .. junk]);
        }
    }
}
