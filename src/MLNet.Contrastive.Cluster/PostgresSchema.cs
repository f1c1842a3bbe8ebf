using Npgsql;

namespace MLNet.Contrastive.Cluster;

/// <summary>
/// Creates the tables, functions and stored queries Orleans' ADO.NET providers need in a PostgreSQL database, from the
/// scripts under Sql/ (Orleans' own, vendored: the NuGet packages ship none). Idempotent: a script runs only when its
/// table is missing, so a database set up by hand from the same scripts is left as it is.
/// </summary>
public static class PostgresSchema
{
    /// <summary>The ADO.NET invariant name Orleans maps to Npgsql.</summary>
    public const string Invariant = "Npgsql";

    /// <summary>Each script with the table it creates, in the order they must run (Main holds the queries table the others fill).</summary>
    private static readonly (string Script, string Table)[] Scripts =
    [
        ("PostgreSQL-Main.sql", "orleansquery"),
        ("PostgreSQL-Clustering.sql", "orleansmembershiptable"),
        ("PostgreSQL-Persistence.sql", "orleansstorage"),
        ("PostgreSQL-Reminders.sql", "orleansreminderstable"),
    ];

    /// <summary>Serializes the silos that start at once against an empty database; an arbitrary constant ("mlnc-pg").</summary>
    private const long LockKey = 0x6d6c_6e63_2d70_67;

    /// <summary>
    /// Runs each of Orleans' PostgreSQL scripts (main, clustering, persistence, reminders) whose table is missing from
    /// <paramref name="connectionString"/>'s database, in one transaction; returns the scripts it ran (none when the
    /// schema is there). The database user needs the right to create tables and functions only when one is missing.
    /// </summary>
    /// <exception cref="InvalidOperationException">A script failed; the message names it and the database's error, and nothing was created.</exception>
    public static async Task<IReadOnlyList<string>> EnsureAsync(string connectionString, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellation);
        // PostgreSQL's DDL is transactional: a failed script leaves no half-made schema behind. The advisory lock makes a
        // second silo wait for the first one's commit, then find the tables there.
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await Execute(connection, transaction, $"SELECT pg_advisory_xact_lock({LockKey})", cancellation);
        var ran = new List<string>();
        foreach (var (script, table) in Scripts)
        {
            await using var exists = new NpgsqlCommand("SELECT to_regclass(@table) IS NOT NULL", connection, transaction);
            exists.Parameters.AddWithValue("table", table);
            if ((bool)(await exists.ExecuteScalarAsync(cancellation))!) continue;
            try
            {
                await Execute(connection, transaction, Read(script), cancellation);
            }
            catch (PostgresException e)
            {
                throw new InvalidOperationException(
                    $"Creating Orleans' {table} table with {script} failed: {e.MessageText} ({e.SqlState}). Nothing was created; a user without " +
                    "the right to create tables needs the database set up beforehand from the scripts in src/MLNet.Contrastive.Cluster/Sql.", e);
            }
            ran.Add(script);
        }
        await transaction.CommitAsync(cancellation);
        return ran;
    }

    /// <summary>The text of one vendored script (an embedded resource).</summary>
    internal static string Read(string script)
    {
        using var stream = typeof(PostgresSchema).Assembly.GetManifestResourceStream($"MLNet.Contrastive.Cluster.Sql.{script}")
            ?? throw new InvalidOperationException($"The embedded script {script} is missing from {typeof(PostgresSchema).Assembly.GetName().Name}.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellation)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellation);
    }
}
