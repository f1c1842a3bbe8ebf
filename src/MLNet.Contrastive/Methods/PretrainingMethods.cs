using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Methods;

/// <summary>The registry of methods by name (the CLI's <c>--method</c>); a new method adds one line here.</summary>
public static class PretrainingMethods
{
    private static readonly Dictionary<string, Func<ResNetEncoder, PretrainOptions, PretrainingMethod>> Factories =
        new(StringComparer.OrdinalIgnoreCase)
        {
            ["simclr"] = (encoder, o) => new SimClr(encoder, o.ProjectionHiddenDimension, o.ProjectionDimension, o.Temperature),
            ["rotation"] = (encoder, o) => new RotNet(encoder, o.ProjectionHiddenDimension, o.RotationAugmentation),
            ["jigsaw"] = (encoder, o) => new Jigsaw(encoder, o.ProjectionHiddenDimension, o.JigsawPermutations, o.Seed),
            ["triplet"] = (encoder, o) => new Triplet(encoder, o.ProjectionHiddenDimension, o.ProjectionDimension, o.Margin, o.Mining, o.Distance),
            ["nce"] = (encoder, o) => new Nce(encoder, o.ProjectionHiddenDimension, o.ProjectionDimension, o.NoiseSamples, o.Temperature),
        };

    public static IReadOnlyCollection<string> Names => Factories.Keys;

    public static PretrainingMethod Create(string name, ResNetEncoder encoder, PretrainOptions options) =>
        Factories.TryGetValue(name, out var create)
            ? create(encoder, options)
            : throw new ArgumentException($"Unknown method '{name}'; known methods: {string.Join(", ", Names)}.", nameof(name));
}
