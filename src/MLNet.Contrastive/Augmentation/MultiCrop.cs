using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Augmentation;

/// <summary>
/// Multi-crop (Caron et al. 2020, shared by SwAV and DINO): two global views of every image from the run's recipe,
/// plus <see cref="LocalCrops"/> small crops that cover a smaller part of the image and are resized to a smaller side.
/// Draws, in order: the first global view, the second, then each small crop; all from the step's seeded generator.
/// </summary>
public sealed class MultiCrop
{
    private readonly ViewAugmenter globalViews;
    private readonly AugmentationOptions? localRecipe;
    private readonly int? localCropSize;
    private readonly int sizeMultiple;
    private ViewAugmenter? localViews;

    /// <summary>
    /// Global views from <paramref name="globalRecipe"/>; <paramref name="localCrops"/> small crops from the same recipe with
    /// crop area fraction in [<paramref name="scaleMin"/>, <paramref name="scaleMax"/>], of side <paramref name="localCropSize"/>
    /// (null: 4/7 of the image side), rounded down to a multiple of <paramref name="sizeMultiple"/> (a ViT's patch size).
    /// </summary>
    public MultiCrop(AugmentationOptions globalRecipe, int localCrops, int? localCropSize, double scaleMin, double scaleMax, int sizeMultiple = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(localCrops);
        ArgumentOutOfRangeException.ThrowIfLessThan(sizeMultiple, 1);
        globalViews = new ViewAugmenter(globalRecipe);
        LocalCrops = localCrops;
        this.localCropSize = localCropSize;
        this.sizeMultiple = sizeMultiple;
        if (localCrops > 0)
        {
            localRecipe = globalRecipe.Clone();
            (localRecipe.CropScaleMin, localRecipe.CropScaleMax) = (scaleMin, scaleMax);
        }
    }

    /// <summary>Small crops per image besides the two global views.</summary>
    public int LocalCrops { get; }

    /// <summary>All views per image: 2 + <see cref="LocalCrops"/>.</summary>
    public int Views => 2 + LocalCrops;

    /// <summary>The small crops' side for images of side <paramref name="imageSide"/>: the setting, or 4/7 of the side (SwAV's 96 of 224 is 0.43), at least 8.</summary>
    public int LocalCropSize(long imageSide)
    {
        var side = localCropSize ?? (int)Math.Max(8, Math.Round(imageSide * 4.0 / 7));
        return Math.Max(sizeMultiple, side / sizeMultiple * sizeMultiple);
    }

    /// <summary>
    /// The views of <paramref name="images"/> [B, C, H, W]: the global views [2B, C, H', W'] (rows 0…B−1 the first view),
    /// then, when there are small crops, all of them [L·B, C, s, s] (crop j of every image in rows j·B…(j+1)·B−1).
    /// </summary>
    public IReadOnlyList<Tensor> Crops(Tensor images, Generator generator)
    {
        var crops = new List<Tensor> { cat(new[] { globalViews.Augment(images, generator), globalViews.Augment(images, generator) }, 0) };
        if (localRecipe is not null)
        {
            // The crop size follows the images, which the first step shows.
            if (localViews is null)
            {
                var resized = localRecipe.Clone();
                resized.OutputSize = LocalCropSize(images.shape[2]);
                localViews = new ViewAugmenter(resized);
            }
            crops.Add(cat(Enumerable.Range(0, LocalCrops).Select(_ => localViews.Augment(images, generator)).ToArray(), 0));
        }
        return crops;
    }
}
