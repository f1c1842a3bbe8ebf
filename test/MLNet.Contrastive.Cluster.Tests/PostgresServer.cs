using System.Diagnostics;
using Npgsql;

namespace MLNet.Contrastive.Cluster.Tests;

/// <summary>
/// A throw-away PostgreSQL server on loopback at a free port: initdb into a temporary folder, pg_ctl start, and on
/// Dispose pg_ctl stop and the folder deleted. PostgreSQL refuses to run as root, so as root its programs run as the
/// postgres user (which Debian's package creates). Durability is off (fsync, synchronous commit), as the tests' Redis
/// keeps nothing on disk either.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private readonly string bin;
    private readonly string data;

    public string Folder { get; }
    public int Port { get; }

    private PostgresServer(string bin, string folder, int port) => (this.bin, Folder, data, Port) = (bin, folder, Path.Combine(folder, "data"), port);

    /// <summary>Initializes and starts a server; throws with the programs' output when it cannot.</summary>
    public static PostgresServer Start()
    {
        var bin = BinFolder();
        var folder = Path.Combine(Path.GetTempPath(), "mlnc-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        // The postgres user writes its data folder, socket and log here.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(folder, (UnixFileMode)0b111_111_111);
        var server = new PostgresServer(bin, folder, ClusterFixture.FreePort());
        try
        {
            server.Run("initdb", "-D", server.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync");
            server.Run("pg_ctl", "-D", server.data, "-l", Path.Combine(folder, "server.log"), "-w", "-t", "120", "-o",
                $"-k {folder} -p {server.Port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start");
        }
        catch
        {
            server.Dispose();
            throw;
        }
        return server;
    }

    /// <summary>A connection string to <paramref name="database"/> as the superuser.</summary>
    public string ConnectionString(string database = "postgres") => $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true";

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public string CreateDatabase(string name)
    {
        using var connection = new NpgsqlConnection(ConnectionString());
        connection.Open();
        using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        command.ExecuteNonQuery();
        return ConnectionString(name);
    }

    /// <summary>The first value of <paramref name="sql"/> on <paramref name="connectionString"/>'s database.</summary>
    public static T Scalar<T>(string connectionString, string sql, params (string Name, object Value)[] parameters)
    {
        using var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        return (T)command.ExecuteScalar()!;
    }

    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            if (File.Exists(Path.Combine(data, "postmaster.pid"))) Run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop");
        }
        finally
        {
            if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
        }
    }

    /// <summary>Debian's newest /usr/lib/postgresql/N/bin (its initdb and pg_ctl are not on the PATH), or the PATH's.</summary>
    private static string BinFolder()
    {
        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var version) ? version : 0).FirstOrDefault()
            : null;
        if (debian is not null) return debian;
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")));
        return onPath ?? throw new FileNotFoundException(
            "PostgreSQL's initdb was found neither under /usr/lib/postgresql/*/bin nor on the PATH: install Debian's postgresql (build/test does, as root).");
    }

    private void Run(string program, params string[] arguments)
    {
        var path = Path.Combine(bin, program);
        var start = Environment.UserName == "root"
            ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", path, .. arguments])
            : new ProcessStartInfo(path, arguments);
        (start.RedirectStandardOutput, start.RedirectStandardError, start.UseShellExecute) = (true, true, false);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill();
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} ran past 3 minutes.");
        }
        if (process.ExitCode != 0)
        {
            var log = Path.Combine(Folder, "server.log");
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}:\n{output.Result}{error.Result}" +
                (File.Exists(log) ? $"\nserver.log:\n{File.ReadAllText(log)}" : ""));
        }
    }
}
