using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Methods;

/// <summary>The registry of methods by name (the CLI's <c>--method</c>); a new method adds one line here.</summary>
public static class PretrainingMethods
{
    private static readonly Dictionary<string, Func<ResNetEncoder, PretrainOptions, int, PretrainingMethod>> Factories =
        new(StringComparer.OrdinalIgnoreCase)
        {
            ["simclr"] = (encoder, o, _) => new SimClr(encoder, o.ProjectionHiddenDimension, o.ProjectionDimension, o.Temperature),
            ["rotation"] = (encoder, o, _) => new RotNet(encoder, o.ProjectionHiddenDimension, o.RotationAugmentation),
            ["jigsaw"] = (encoder, o, _) => new Jigsaw(encoder, o.ProjectionHiddenDimension, o.JigsawPermutations, o.Seed),
            ["triplet"] = (encoder, o, _) => new Triplet(encoder, o.ProjectionHiddenDimension, o.ProjectionDimension, o.Margin, o.Mining, o.Distance),
            ["nce"] = (encoder, o, _) => new Nce(encoder, o.ProjectionHiddenDimension, o.ProjectionDimension, o.NoiseSamples, o.Temperature),
            ["supervised"] = (encoder, _, classes) => new Supervised(encoder, classes),
        };

    public static IReadOnlyCollection<string> Names => Factories.Keys;

    /// <summary>The method <paramref name="name"/> around <paramref name="encoder"/>; <paramref name="classes"/> is the label count (0 when unlabeled).</summary>
    public static PretrainingMethod Create(string name, ResNetEncoder encoder, PretrainOptions options, int classes = 0) =>
        Factories.TryGetValue(name, out var create)
            ? create(encoder, options, classes)
            : throw new ArgumentException($"Unknown method '{name}'; known methods: {string.Join(", ", Names)}.", nameof(name));
}
