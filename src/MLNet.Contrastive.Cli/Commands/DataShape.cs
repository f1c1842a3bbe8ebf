using System.CommandLine;
using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>--channels: given, or read from the images, with a note when they are far larger than --image-size.</summary>
internal static class DataShape
{
    internal static Option<int?> ChannelsOption(string? when = null) => new("--channels")
    {
        Description = $"1 (grayscale) or 3 (RGB){when}. Default: from the images — 3 when any of the first 32 has colour (an IDX file: its header).",
    };

    /// <summary>The channels to read <paramref name="data"/> with: <paramref name="given"/>, or what a look at the images says (printed).</summary>
    internal static int Channels(int? given, string data, int imageSize)
    {
        var probe = ImageProbe.Of(data);
        if (given is null)
            Console.WriteLine(probe.Channels == 3
                ? $"Channels: 3 (RGB) — the images have colour; --channels 1 reads them grey."
                : $"Channels: 1 (grayscale) — {(File.Exists(data) ? "the IDX header has no channel dimension" : $"none of the {probe.Examined} images looked at has colour")}; --channels 3 reads them as RGB.");
        // A 1,000 px photo read at 28 px keeps a thumbnail of what it shows.
        if (Math.Min(probe.Height, probe.Width) >= 4 * imageSize)
            Console.WriteLine($"Note: the images are about {probe.Width}×{probe.Height} px (median of {Math.Min(probe.Examined, 32)}) and are resized to {imageSize}×{imageSize}; " +
                              "--image-size 96 or 224 (with --encoder ResNet18 or VitSmall) keeps more of their detail.");
        return given ?? probe.Channels;
    }
}
