using System.CommandLine;
using System.Globalization;
using System.Reflection;
using MLNet.Contrastive.Methods;
using Spectre.Console;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>
/// The CLI's view of each method's own settings: <c>--method-option name=value</c> sets any public property of the
/// method's options class (names are case-insensitive; dashes and underscores are ignored), and <c>methods</c> lists them.
/// </summary>
internal static class MethodSettings
{
    public static Option<string> MethodOption() => new("--method")
    {
        Description = $"Method: {string.Join(", ", PretrainingMethods.Names)} (`methods` lists each one's settings).",
        DefaultValueFactory = _ => "simclr",
    };

    public static Option<string[]> SettingsOption() => new("--method-option")
    {
        Description = "A setting of the method, name=value (repeatable), e.g. --method-option temperature=0.1; `methods` lists them.",
        AllowMultipleArgumentsPerToken = false,
        DefaultValueFactory = _ => [],
    };

    /// <summary>The method <paramref name="name"/> with its defaults and the given name=value settings.</summary>
    public static MethodOptions Create(string name, IEnumerable<string> settings)
    {
        var options = PretrainingMethods.Defaults(name);
        foreach (var setting in settings)
        {
            var equals = setting.IndexOf('=');
            if (equals <= 0) throw new ArgumentException($"--method-option '{setting}': expected name=value.");
            var (key, text) = (Normalize(setting[..equals]), setting[(equals + 1)..].Trim());
            var property = Settable(options.GetType()).FirstOrDefault(p => Normalize(p.Name) == key)
                ?? throw new ArgumentException($"--method-option '{setting}': method '{name}' has no setting '{setting[..equals]}'; " +
                                               $"its settings: {string.Join(", ", Settable(options.GetType()).Select(p => p.Name))}.");
            property.SetValue(options, Parse(text, property.PropertyType, setting));
        }
        options.Validate();
        return options;
    }

    public static Command ListCommand()
    {
        var command = new Command("methods", "List the methods and each one's settings with their defaults (set them with --method-option name=value).");
        command.SetAction(_ =>
        {
            var table = new Table().AddColumn("Method").AddColumn("Setting").AddColumn("Type").AddColumn(new TableColumn("Default").RightAligned());
            foreach (var name in PretrainingMethods.Names)
            {
                var defaults = PretrainingMethods.Defaults(name);
                var first = true;
                foreach (var property in Settable(defaults.GetType()))
                {
                    table.AddRow(first ? name : "", property.Name, Markup.Escape(TypeName(property.PropertyType)),
                        Markup.Escape(Convert.ToString(property.GetValue(defaults), CultureInfo.InvariantCulture) is { Length: > 0 } v ? v : "(auto)"));
                    first = false;
                }
                if (first) table.AddRow(name, "—", "", "");
            }
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static IEnumerable<PropertyInfo> Settable(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.SetMethod!.IsPublic);

    private static string Normalize(string name) => name.Replace("-", "").Replace("_", "").Trim().ToLowerInvariant();

    private static string TypeName(Type type) => Nullable.GetUnderlyingType(type) is { } inner ? TypeName(inner) + "?"
        : type.IsEnum ? string.Join("|", Enum.GetNames(type)) : type.Name switch { "Int32" => "int", "Double" => "number", "Boolean" => "bool", var n => n };

    private static object? Parse(string text, Type type, string setting)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner)
            return text.Length == 0 || text.Equals("auto", StringComparison.OrdinalIgnoreCase) ? null : Parse(text, inner, setting);
        try
        {
            if (type.IsEnum) return Enum.Parse(type, text, ignoreCase: true);
            var value = Convert.ChangeType(text, type, CultureInfo.InvariantCulture);
            if (value is double d && !double.IsFinite(d)) throw new FormatException();
            return value;
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException or ArgumentException)
        {
            throw new ArgumentException($"--method-option '{setting}': '{text}' is not a valid {TypeName(type)}.");
        }
    }
}
