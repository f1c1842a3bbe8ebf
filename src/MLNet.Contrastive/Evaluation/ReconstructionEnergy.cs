using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Evaluation;

/// <summary>
/// A per-image energy from a trained MAE (the energy view of reconstruction: low for images like the training data,
/// higher for corrupted or unfamiliar ones): the mean squared error of its reconstruction of the masked patches
/// (<see cref="Objectives.MaeLoss.PerImage"/>, against the targets it was trained on), averaged over a few random masks
/// drawn from a fixed seed, so that the same image always gets the same score.
/// </summary>
public static class ReconstructionEnergy
{
    /// <summary>Random masks averaged per image. Default 4.</summary>
    public const int DefaultMasks = 4;

    /// <summary>The energy of every image of <paramref name="images"/> (at the encoder's image size), from the MAE run saved at <paramref name="checkpointPath"/>.</summary>
    public static float[] Score(string checkpointPath, ImageStore images, int masks = DefaultMasks, int seed = 0)
    {
        var (_, method) = Checkpoint.LoadMethod(checkpointPath);
        return method is Mae mae
            ? Score(mae, images, masks, seed)
            : throw new ArgumentException($"{checkpointPath}: reconstruction energy needs an MAE run; this checkpoint is a '{method.Options.Name}' run.", nameof(checkpointPath));
    }

    /// <summary>The energy of every image of <paramref name="images"/> from <paramref name="mae"/> (in eval mode, on its device), <paramref name="masks"/> masks each.</summary>
    public static float[] Score(Mae mae, ImageStore images, int masks = DefaultMasks, int seed = 0, int batchSize = 256)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(masks, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var size = mae.Encoder.Options.ImageSize;
        if (images.Height != size || images.Width != size || images.Channels != mae.Encoder.Options.InputChannels)
            throw new ArgumentException(
                $"The images are {images.Channels}×{images.Height}×{images.Width}; the MAE was trained on {mae.Encoder.Options.InputChannels}×{size}×{size}.", nameof(images));
        var device = mae.Encoder.parameters().First().device;
        var wasTraining = mae.training;
        mae.eval();
        var scores = new float[images.Count];
        try
        {
            using var generator = new Generator((ulong)seed);
            using var noGrad = no_grad();
            for (var start = 0; start < images.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var indices = Enumerable.Range(start, Math.Min(batchSize, images.Count - start)).ToArray();
                var batch = images.Batch(indices, device);
                var total = zeros(indices.Length, device: device);
                for (var m = 0; m < masks; m++)
                {
                    var (prediction, target, mask) = mae.Reconstruct(batch, generator);
                    total.add_(Objectives.MaeLoss.PerImage(prediction, target, mask));
                }
                var sums = total.cpu().data<float>().ToArray();
                for (var i = 0; i < sums.Length; i++) scores[start + i] = sums[i] / masks;
            }
        }
        finally
        {
            mae.train(wasTraining);
        }
        return scores;
    }
}
