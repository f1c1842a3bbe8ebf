using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace MLNet.Contrastive.Methods;

/// <summary>The registry of methods by name (the CLI's <c>--method</c>); a new method adds one line here.</summary>
public static class PretrainingMethods
{
    private static readonly Dictionary<string, Type> Types = new(StringComparer.OrdinalIgnoreCase)
    {
        ["simclr"] = typeof(SimClrOptions),
        ["moco"] = typeof(MoCoOptions),
        ["byol"] = typeof(ByolOptions),
        ["simsiam"] = typeof(SimSiamOptions),
        ["barlow"] = typeof(BarlowTwinsOptions),
        ["vicreg"] = typeof(VicRegOptions),
        ["rotation"] = typeof(RotationOptions),
        ["jigsaw"] = typeof(JigsawOptions),
        ["triplet"] = typeof(TripletOptions),
        ["nce"] = typeof(NceOptions),
        ["swav"] = typeof(SwavOptions),
        ["clip"] = typeof(ClipOptions),
        ["supervised"] = typeof(SupervisedOptions),
        ["distill"] = typeof(DistillationOptions),
        ["dcl"] = typeof(DclOptions),
        ["dclw"] = typeof(DclwOptions),
        ["nnclr"] = typeof(NnclrOptions),
        ["dino"] = typeof(DinoOptions),
        ["mae"] = typeof(MaeOptions),
        ["ibot"] = typeof(IbotOptions),
        ["ijepa"] = typeof(IjepaOptions),
    };

    /// <summary>Every registered name, in registry order.</summary>
    public static IReadOnlyCollection<string> Names => Types.Keys;

    /// <summary>The default settings of the method <paramref name="name"/>.</summary>
    public static MethodOptions Defaults(string name) =>
        Types.TryGetValue(name, out var type)
            ? (MethodOptions)Activator.CreateInstance(type)!
            : throw new ArgumentException($"Unknown method '{name}'; known methods: {string.Join(", ", Names)}.", nameof(name));

    internal static string NameOf(Type optionsType) =>
        Types.FirstOrDefault(t => t.Value == optionsType).Key
        ?? throw new InvalidOperationException($"{optionsType.Name} is not registered in {nameof(PretrainingMethods)}.");

    /// <summary>JSON for method settings: written with a "method" name field, read back as the registered subclass.</summary>
    internal static JsonSerializerOptions Json { get; } = new()
    {
        Converters = { new JsonStringEnumConverter() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { AddMethodTypes } },
    };

    private static void AddMethodTypes(JsonTypeInfo info)
    {
        if (info.Type != typeof(MethodOptions)) return;
        info.PolymorphismOptions = new JsonPolymorphismOptions { TypeDiscriminatorPropertyName = "method" };
        foreach (var (name, type) in Types) info.PolymorphismOptions.DerivedTypes.Add(new JsonDerivedType(type, name));
    }
}
