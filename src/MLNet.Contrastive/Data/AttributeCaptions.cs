namespace MLNet.Contrastive.Data;

/// <summary>
/// Captions for a labelled image set that has none, from what can be computed: the class name, how bright the object is
/// (mean intensity of its pixels) and how large (its share of the image), in one of several sentence templates drawn
/// with a seed — e.g. "a photo of a dark trouser", "a large ankle boot, light". It makes a captioned set for paired
/// training and zero-shot tests out of Fashion-MNIST; every caption names its class, so zero-shot accuracy on such a set
/// measures how well the image tower learned the class words, not open-vocabulary transfer.
/// </summary>
public static class AttributeCaptions
{
    private static readonly string[] Templates =
    [
        "a photo of a {0} {1}", "a {2} {1}", "a {2} {0} {1}", "a {1}, {0}", "{0} {1} on black", "a picture of a {2} {1}",
    ];

    /// <summary>One caption per image of <paramref name="images"/>, which must be labelled with class names.</summary>
    public static IReadOnlyList<string> Create(ImageStore images, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Labels is null || images.LabelNames is null)
            throw new ArgumentException("Attribute captions need labelled images with class names (a labelled folder, or IDX labels with names).", nameof(images));
        var random = new Random(seed);
        var captions = new string[images.Count];
        var size = images.ImageSize;
        for (var i = 0; i < images.Count; i++)
        {
            var pixels = images.Image(i);
            var (foreground, sum) = (0, 0L);
            foreach (var p in pixels)
                if (p > 25) (foreground, sum) = (foreground + 1, sum + p);
            var share = (double)foreground / size;
            var brightness = foreground == 0 ? 0 : sum / (255.0 * foreground);
            var shade = brightness < 0.45 ? "dark" : brightness < 0.65 ? "grey" : "light";
            var extent = share < 0.3 ? "small" : share < 0.5 ? "medium" : "large";
            var word = images.LabelNames[images.Labels[i]].ToLowerInvariant();
            captions[i] = string.Format(System.Globalization.CultureInfo.InvariantCulture, Templates[random.Next(Templates.Length)], shade, word, extent);
        }
        return captions;
    }
}
