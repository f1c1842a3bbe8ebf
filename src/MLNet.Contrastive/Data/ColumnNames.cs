namespace MLNet.Contrastive.Data;

/// <summary>Names for the columns a stage adds on its way, chosen so that none hides a column of the caller's data.</summary>
internal static class ColumnNames
{
    /// <summary><paramref name="name"/>, or name_1, name_2, … — the first not in <paramref name="taken"/>, which receives it.</summary>
    public static string Unused(string name, ISet<string> taken)
    {
        var candidate = name;
        for (var i = 1; taken.Contains(candidate); i++) candidate = $"{name}_{i}";
        taken.Add(candidate);
        return candidate;
    }
}
