using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Distributed;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

// collectives <out>: each rank writes rank<r>.txt with the results of collectives on values that depend on its rank.
// stall <out>: rank 1 sleeps for 2 minutes before an allreduce the others wait in, with a 2-second stall timeout.
// allreduce-time <out> <floats> <repeats>: rank 0 writes the time of each in-place allreduce of that many floats.
// train <out> <images> <labels> <steps> <batch> [--distributed] [--method simclr|byol|barlow|vicreg|moco|nnclr|dino|swav|ibot|nce|jigsaw|ijepa|distill] [--no-sync-bn] [--views]: a
// short run on views without randomness, so N ranks at batch B/N train the same objective as one process at batch B —
// supervised on a ViT (layer norm, no batch coupling), or SimCLR, Barlow Twins, VICReg (losses over the global batch) or
// BYOL on the small ResNet (batch norm synchronised over the ranks); writes rank<r>.txt with the losses, rank<r>.bin
// with the weights and rank<r>.names with their tensors' names.
// A failure is printed and ends the process with exit code 1: an unhandled exception would abort it (and leave a crash
// dump where the test host asked for them).
try
{
    return Run(args);
}
catch (Exception e)
{
    Console.Error.WriteLine($"{e.GetType().Name}: {e.Message}");
    return 1;
}

static int Run(string[] args)
{
    var (mode, output) = (args[0], args[1]);
    Directory.CreateDirectory(output);
    if (mode == "collectives")
    {
        using var world = MpiWorld.Start();
        var r = world.Rank;
        float[] sums = [r + 1, 2 * (r + 1) + 0.5f, -3 * r];
        world.AllReduceSum(sums);
        var gathered = new float[2 * world.Size];
        world.AllGather([10 * r, 10 * r + 1], gathered);
        float[] broadcast = r == 0 ? [7, 8] : [0, 0];
        world.Broadcast(broadcast);
        // More than one bucket: every element must hold the sum of the ranks' r + 1.
        var large = new float[MpiWorld.BucketFloats + 3];
        Array.Fill(large, r + 1);
        world.AllReduceSum(large);
        var expected = world.Size * (world.Size + 1) / 2f;
        world.Barrier();
        File.WriteAllLines(Path.Combine(output, $"rank{r}.txt"),
        [
            $"size {world.Size}", $"allreduce {string.Join(' ', sums)}", $"allgather {string.Join(' ', gathered)}",
            $"broadcast {string.Join(' ', broadcast)}", $"large-wrong {large.Count(v => v != expected)} of {large.Length}",
        ]);
        return 0;
    }
    if (mode == "stall")
    {
        // Rank 1 stalls (sleeps) before the first allreduce; the others wait for it past a 2-second stall timeout.
        using var world = MpiWorld.Start();
        world.StallTimeout = TimeSpan.FromSeconds(2);
        if (world.Rank == 1) Thread.Sleep(TimeSpan.FromMinutes(2));
        world.AllReduceSum([1f]);
        return 0;
    }
    if (mode == "allreduce-time")
    {
        using var world = MpiWorld.Start();
        var (values, repeats) = (new float[int.Parse(args[2])], int.Parse(args[3]));
        var times = new List<double>();
        for (var i = 0; i <= repeats; i++)
        {
            world.Barrier();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            world.AllReduceSum(values);
            if (i > 0) times.Add(clock.Elapsed.TotalMilliseconds); // the first call sets up the shared-memory buffers
        }
        if (world.Rank == 0) File.WriteAllLines(Path.Combine(output, "allreduce-ms.txt"), times.Select(t => t.ToString("F2")));
        return 0;
    }
    if (mode == "train")
    {
        var (images, labels, steps, batch) = (args[2], args[3], int.Parse(args[4]), int.Parse(args[5]));
        var parallel = args.Contains("--distributed") ? MpiDataParallel.Start() : null;
        var rank = parallel?.Rank ?? 0;
        var data = ImageStore.Load(images, labels);
        data = data.Subset(Enumerable.Range(0, steps * batch).ToArray());
        var method = args.SkipWhile(a => a != "--method").Skip(1).FirstOrDefault() ?? "supervised";
        var vit = new EncoderOptions
        {
            Architecture = EncoderArchitecture.VisionTransformer, InputChannels = 1, ImageSize = 28, PatchSize = 7, Depth = 1,
            HiddenDimension = 32, Heads = 2, MlpDimension = 64, Mean = [0.5f], Std = [0.5f],
        };
        var options = new PretrainOptions
        {
            Method = method switch
            {
                "supervised" => new SupervisedOptions { StrongViews = true },
                "simclr" => new SimClrOptions(),
                "byol" => new ByolOptions { SecondViewSolarizeProbability = 0 },
                "barlow" => new BarlowTwinsOptions(),
                "vicreg" => new VicRegOptions(),
                // Four shuffled key groups: the permutation is drawn over the global batch and each rank passes its views of
                // each group, normalised by the whole group (synchronised batch norm weighted by each rank's count).
                "moco" => new MoCoOptions { QueueSize = 512, ShuffleGroups = 4 },
                // Noise samples drawn over the global batch's rows; tiles' offsets and permutations per image; I-JEPA's block
                // masks drawn for the global batch (the one-block ViT).
                "nce" => new NceOptions(),
                "jigsaw" => new JigsawOptions(),
                "ijepa" => new IjepaOptions { PredictorDimension = 32, PredictorDepth = 1, PredictorHeads = 2 },
                "nnclr" => new NnclrOptions { SupportSize = 512 },
                // Two whole-image global views and no small crops: views without randomness, as the recipe below.
                "dino" => new DinoOptions { LocalCrops = 0, GlobalCropScaleMin = 1, Prototypes = 256, HiddenDimension = 128, BottleneckDimension = 64 },
                // Two views and a queue of two batches that joins the codes from the third step.
                "swav" => new SwavOptions { LocalCrops = 0, QueueLength = 256, QueueStartFraction = 0, Prototypes = 64 },
                // The one-block ViT; random per-image masks (SampleDraws) and a patch centre over a random count of patches.
                "ibot" => new IbotOptions { LocalCrops = 0, GlobalCropScaleMin = 1, Prototypes = 64, HiddenDimension = 64, BottleneckDimension = 32 },
                // Mixup (on by default): one λ and a permutation of the global batch per step, partners from every rank's views;
                // the teacher a seeded random small ResNet exported to ONNX (each process writes its own copy).
                "distill" => new DistillationOptions { Teacher = RandomOnnxTeacher(Path.Combine(output, $"teacher{rank}.onnx")), TeacherImageSize = 28 },
                _ => throw new ArgumentException($"Unknown method '{method}': supervised, simclr, byol, barlow, vicreg, moco, nnclr, dino, swav, ibot, nce, jigsaw, ijepa or distill."),
            },
            // --views: the default recipe for the images (random crops, flips, jitter, noise); otherwise views without randomness.
            Augmentation = args.Contains("--views") ? null : new AugmentationOptions
            {
                CropScaleMin = 1, CropScaleMax = 1, CropRatioMin = 1, CropRatioMax = 1, FlipProbability = 0,
                ColorJitterProbability = 0, GrayscaleProbability = 0, BlurProbability = 0,
            },
            Encoder = method is "supervised" or "ibot" or "ijepa" ? vit : new EncoderOptions { StemWidth = 16, StageWidths = [16, 32], EmbeddingStages = 1, EmbeddingGrid = 1 },
            Run = { Epochs = 1, BatchSize = batch, Threads = 1, Device = "cpu", Seed = 5, LearningRate = method == "supervised" ? null : 1e-3 },
            WarmupFraction = 0, DataParallel = parallel,
            SynchronizeBatchNorm = !args.Contains("--no-sync-bn"),
            // SGD: AdamW divides every gradient by its own size, so the float rounding of a near-zero one (a batch norm's
            // input layers have such directions) becomes a full step, and two correct runs part after a few steps.
            Optimizer = method == "supervised" ? OptimizerKind.AdamW : OptimizerKind.Sgd,
        };
        var result = new Pretrainer(options).Fit(data);
        File.WriteAllLines(Path.Combine(output, $"rank{rank}.txt"), result.History.Steps.Select(s => s.Loss.ToString("R")));
        var tensors = result.Method.state_dict().Where(p => p.Value.dtype == TorchSharp.torch.ScalarType.Float32).ToList();
        using (var file = File.Create(Path.Combine(output, $"rank{rank}.bin")))
        using (var writer = new BinaryWriter(file))
            foreach (var (_, weights) in tensors)
                foreach (var value in weights.data<float>()) writer.Write(value);
        // Which tensor each stretch of rank<r>.bin holds: a name and its number of values per line.
        File.WriteAllLines(Path.Combine(output, $"rank{rank}.names"), tensors.Select(t => $"{t.Key} {t.Value.numel()}"));
        parallel?.Dispose();
        return 0;
    }
    Console.Error.WriteLine($"Unknown mode '{mode}': collectives or train.");
    return 2;
}

/// <summary>A small ResNet with weights from a fixed seed, exported to ONNX at <paramref name="path"/>: the same teacher in every process.</summary>
static string RandomOnnxTeacher(string path)
{
    TorchSharp.torch.random.manual_seed(11);
    using var teacher = ImageEncoder.Create(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32], EmbeddingStages = 1, EmbeddingGrid = 1 });
    MLNet.Contrastive.Onnx.EncoderOnnxExporter.Export(teacher, path);
    return path;
}
