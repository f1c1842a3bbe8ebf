#:project ../src/MLNet.Contrastive.Cluster/MLNet.Contrastive.Cluster.csproj
#:package TorchSharp-cpu@0.107.0
#:package Microsoft.ML.OnnxRuntime@1.32.0
#:property PlatformTarget=x64
#:property PublishAot=false
#:property ManagePackageVersionsCentrally=false
using System.Diagnostics;
using System.Text.Json;
using MLNet.Contrastive.Cluster;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Onnx;
// A cluster job's output against the single-process embedder:
//   dotnet run build/cluster-check.cs -- OUT_FOLDER IMAGE_FOLDER ENCODER_ONNX [THREADS]
// Times ImageStore.Load + ImageEmbedder (what `embed` runs), then checks rows = images, no duplicates, none missing,
// max |difference| <= 1e-5 (exit 0 when all hold).
var (output, data, model) = (args[0], args[1], args[2]);
var threads = args.Length > 3 ? int.Parse(args[3]) : 1;
var clock = Stopwatch.StartNew();
using var embedder = new ImageEmbedder(model, new ImageEmbedderOptions { Threads = threads, Log = _ => { } });
var (c, h, w) = embedder.InputShape;
var store = ImageStore.Load(data, null, new ImageLoadOptions { Channels = c, Height = h, Width = w });
var embeddings = embedder.Embed(store);
var seconds = clock.Elapsed.TotalSeconds;
Console.WriteLine($"single process, {threads} thread(s): {store.Count} images in {seconds:F1} s = {store.Count / seconds:F0} images/s (load + decode + embed)");
var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, ShardLayout.ManifestFile))).RootElement;
var rows = manifest.GetProperty("shards").EnumerateArray().SelectMany(s => ShardOutput.Read(Path.Combine(output, s.GetProperty("file").GetString()!))).ToList();
var reference = Enumerable.Range(0, store.Count).ToDictionary(i => Path.GetFullPath(store.Sources[i]), i => i);
var distinct = rows.Select(r => r.Path).Distinct().Count();
var missing = reference.Keys.Except(rows.Select(r => r.Path)).Count();
var largest = rows.Max(r => r.Embedding.Zip(embeddings.Row(reference[r.Path]).ToArray(), (a, b) => Math.Abs(a - b)).Max());
Console.WriteLine($"inputs {store.Count}, output rows {rows.Count}, distinct {distinct}, duplicates {rows.Count - distinct}, missing {missing}, max |cluster - single process| = {largest:G3}");
return rows.Count == store.Count && distinct == rows.Count && missing == 0 && largest <= 1e-5 ? 0 : 1;
