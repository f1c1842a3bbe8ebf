namespace MLNet.Contrastive.Data;

/// <summary>What a look at a few images says about a dataset before it is read: colour and typical size.</summary>
/// <param name="Channels">3 when any image looked at has colour (a pixel whose red, green and blue differ), else 1.</param>
/// <param name="Height">Median height of the images looked at.</param>
/// <param name="Width">Median width of the images looked at.</param>
/// <param name="Examined">How many images were looked at.</param>
public sealed record ImageProbe(int Channels, int Height, int Width, int Examined)
{
    /// <summary>
    /// Looks at an image folder (the first <paramref name="sample"/> files in the order <see cref="ImageStore.Load"/>
    /// reads them) or an IDX images file (its header). Unreadable files are passed over; a folder of none readable says so.
    /// </summary>
    public static ImageProbe Of(string path, int sample = 32, long maxPixels = 50_000_000)
    {
        if (File.Exists(path))
        {
            var (count, height, width, channels) = IdxReader.Shape(path);
            return new ImageProbe(channels, height, width, count);
        }
        if (!Directory.Exists(path)) throw new ImageDataException(path, "no such file or folder.");
        var (colour, heights, widths) = (false, new List<int>(), new List<int>());
        foreach (var file in ImageDecoder.ImageFilesUnder(path))
        {
            if (heights.Count == sample) break;
            try
            {
                using var image = ImageDecoder.Decode(file, maxPixels);
                heights.Add(image.Height);
                widths.Add(image.Width);
                colour |= HasColour(image.Pixels);
            }
            catch (ImageDataException)
            {
                // The load that follows names it (or skips it, when asked to).
            }
        }
        if (heights.Count == 0) throw new ImageDataException(path, "no readable image (.png, .jpg, .jpeg, .bmp) in the folder.");
        heights.Sort();
        widths.Sort();
        return new ImageProbe(colour ? 3 : 1, heights[heights.Count / 2], widths[widths.Count / 2], heights.Count);
    }

    /// <summary>Whether any BGRA32 pixel's blue, green and red differ by more than a rounding step.</summary>
    private static bool HasColour(ReadOnlySpan<byte> bgra)
    {
        for (var p = 0; p + 2 < bgra.Length; p += 4)
            if (Math.Abs(bgra[p] - bgra[p + 1]) > 2 || Math.Abs(bgra[p + 1] - bgra[p + 2]) > 2) return true;
        return false;
    }
}
