using System.CommandLine;
using System.Globalization;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Reporting;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>
/// <c>energy</c>: a reconstruction energy per image from an MAE run (<see cref="ReconstructionEnergy"/>): one
/// <c>source,energy,error</c> row per image, an HTML page of the highest energies, the calibration and the calibrated
/// energy as ONNX.
/// </summary>
internal static class EnergyCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "An MAE run's folder (pretrain --method mae) or its checkpoint.", Required = true };
        var data = new Option<string>("--data") { Description = "Images to score: a folder or an IDX images file.", Required = true };
        var reference = new Option<string?>("--reference")
        {
            Description = "Images to call normal (e.g. the training images): the usual error at each patch position is learned from them. " +
                          "Without it and without --calibration, the scored images calibrate themselves (fine when few of them are unusual).",
        };
        var calibration = new Option<string?>("--calibration")
        {
            Description = "A calibration file: read when it exists and --reference is not given; otherwise written. Default: beside --out.",
        };
        var output = new Option<string>("--out") { Description = "CSV file to write: source,energy,error per image; an HTML page of the highest energies and the calibrated energy as ONNX go beside it.", DefaultValueFactory = _ => "energy.csv" };
        var seed = new Option<int>("--seed") { Description = "Seed of the masks every image is reconstructed under (energies compare only under one seed). Default 0.", DefaultValueFactory = _ => 0 };
        var command = new Command("energy", "Score each image by how unlike the MAE's training images its reconstruction is (corrupted, occluded or unfamiliar images score high).")
        {
            model, data, reference, calibration, output, seed,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var (dataPath, path) = (parse.GetValue(data)!, parse.GetValue(output)!);
            var energy = ReconstructionEnergy.Load(parse.GetValue(model)!, parse.GetValue(seed));
            var load = energy.ImageLoadOptions;
            var images = ImageStore.Load(dataPath, null, load);
            var calibrationPath = parse.GetValue(calibration) ?? Path.ChangeExtension(path, ".calibration.json");
            EnergyCalibration fitted;
            ImageStore? referenceImages = null;
            if (parse.GetValue(reference) is { } referencePath)
            {
                referenceImages = ImageStore.Load(referencePath, null, load);
                fitted = energy.Calibrate(referenceImages);
                fitted.Save(calibrationPath);
                Console.WriteLine($"Calibrated on {fitted.ReferenceImages:N0} reference images of {referencePath}; wrote {calibrationPath}.");
            }
            else if (parse.GetValue(calibration) is { } given && File.Exists(given))
            {
                fitted = EnergyCalibration.Load(given);
                Console.WriteLine($"Read the calibration of {given} ({fitted.ReferenceImages:N0} reference images).");
            }
            else
            {
                fitted = energy.Calibrate(images);
                fitted.Save(calibrationPath);
                Console.WriteLine($"No --reference: calibrated on the {images.Count:N0} scored images themselves; wrote {calibrationPath}.");
            }

            // The calibrated energy as an ONNX graph, for ONNX Runtime clients ([N, C, H, W] pixels 0–255 → [N, 1]).
            var onnx = Path.ChangeExtension(path, ".onnx");
            Onnx.EnergyOnnxExporter.Export(energy, fitted, onnx);

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (scores, errors) = energy.Score(images, fitted);
            var seconds = clock.Elapsed.TotalSeconds;
            using (var csv = new StreamWriter(path))
            {
                csv.WriteLine("source,energy,error");
                for (var i = 0; i < images.Count; i++)
                    csv.WriteLine($"{EmbedCommand.Quote(EmbeddedImages.Name(images, dataPath, i))},{scores[i].ToString("R", CultureInfo.InvariantCulture)},{errors[i].ToString("R", CultureInfo.InvariantCulture)}");
            }
            var sorted = scores.Order().ToArray();
            var fact = $"{images.Count:N0} images, energy median {sorted[sorted.Length / 2]:F2}, 99th percentile {sorted[(int)(0.99 * (sorted.Length - 1))]:F2}, " +
                       $"highest {sorted[^1]:F2} ({images.Count / seconds:F0} images/s; the reference images score 0 ± 1.4).";
            var html = Path.ChangeExtension(path, ".html");
            EnergyPage.Write(html, energy, images, [.. Enumerable.Range(0, images.Count).Select(i => EmbeddedImages.Name(images, dataPath, i))], scores,
                referenceImages is null ? null : energy.Energy(referenceImages, fitted), [fact, $"Calibrated on {fitted.ReferenceImages:N0} reference images."]);
            Console.WriteLine(fact);
            Console.WriteLine($"Wrote {path}, {html} and {onnx} (the calibrated energy for ONNX Runtime).");
            return 0;
        }));
        return command;
    }
}
