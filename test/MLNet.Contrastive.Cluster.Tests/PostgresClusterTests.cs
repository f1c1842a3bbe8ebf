using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MLNet.Contrastive.Cluster.Tests;

/// <summary>
/// Clusters whose membership, job and shard state and reminders are in a real PostgreSQL 15 (Orleans' ADO.NET
/// providers), started here on loopback, against the same job on the fixture's Redis.
/// </summary>
public class PostgresClusterTests
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(4);
    private PostgresServer? postgres;

    private PostgresServer Postgres => postgres ?? throw new InvalidOperationException("The PostgreSQL server did not start.");

    [OneTimeSetUp]
    public void StartPostgres()
    {
        var clock = Stopwatch.StartNew();
        postgres = PostgresServer.Start();
        TestContext.Progress.WriteLine($"PostgreSQL up on 127.0.0.1:{postgres.Port} in {clock.Elapsed.TotalSeconds:F1} s");
    }

    [OneTimeTearDown]
    public void StopPostgres() => postgres?.Dispose();

    /// <summary>Two silos (separate hosts in this process, as <c>cluster silo</c> runs them) and a client, on <paramref name="store"/>.</summary>
    private sealed class Cluster(IHost[] silos, IHost client) : IAsyncDisposable
    {
        public EmbeddingJobs Jobs { get; } = new(client.Services.GetRequiredService<IClusterClient>());

        public static async Task<Cluster> Start(ClusterStoreOptions store)
        {
            ClusterHosting.RedriveInterval = TimeSpan.FromSeconds(2);
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            var silos = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => StartHost(builder => builder.UseOrleans(silo => silo.UseContrastiveCluster(new ClusterSiloOptions
            {
                Redis = store.Redis, Postgres = store.Postgres, ClusterId = store.ClusterId,
                SiloPort = ClusterFixture.FreePort(), GatewayPort = ClusterFixture.FreePort(), Threads = 1,
            })), timeout.Token)));
            var client = await StartHost(builder => builder.UseOrleansClient(client => client.UseContrastiveCluster(store)), timeout.Token);
            return new Cluster(silos, client);
        }

        private static async Task<IHost> StartHost(Action<HostApplicationBuilder> configure, CancellationToken cancellation)
        {
            var builder = Host.CreateApplicationBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            configure(builder);
            var host = builder.Build();
            await host.StartAsync(cancellation);
            return host;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var host in silos.Prepend(client))
            {
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await host.StopAsync(stop.Token);
                host.Dispose();
            }
        }
    }

    /// <summary>Runs the fixture's images as one job on <paramref name="store"/>; returns its rows, its own clock and the time from the first silo's start.</summary>
    private static async Task<(List<EmbeddingRow> Rows, TimeSpan Job, TimeSpan Total)> RunJob(ClusterStoreOptions store, string output, Action<string>? whileRunning = null)
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await Cluster.Start(store);
        var id = await cluster.Jobs.SubmitAsync(new EmbeddingJobOptions { Model = ClusterFixture.Encoder, Data = ClusterFixture.Images, Output = output, ShardSize = 32, BatchSize = 16 });
        whileRunning?.Invoke(id);
        using var timeout = new CancellationTokenSource(JobTimeout);
        var status = await cluster.Jobs.WaitAsync(id, s => TestContext.Progress.WriteLine(s), cancellation: timeout.Token);
        var total = clock.Elapsed;

        Assert.That(status.State, Is.EqualTo(JobState.Completed), status.ToString());
        Assert.That((status.Shards, status.Rows), Is.EqualTo((10, (long)ClusterFixture.ImageCount)));
        var rows = EmbeddingJobTests.ReadOutput(output).Rows;
        EmbeddingJobTests.AssertEachImageOnceAndEqual(rows);
        return (rows, status.Elapsed, total);
    }

    [Test]
    public async Task TwoSilosOnPostgresEmbedEachImageOnceWithTheRedisValues()
    {
        var database = Postgres.CreateDatabase("two_silos");
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var onRedis = new ClusterStoreOptions { Redis = ClusterFixture.Redis, ClusterId = "redis-" + suffix };
        var onPostgres = new ClusterStoreOptions { Postgres = database, ClusterId = "postgres-" + suffix };
        long activeSilos = 0;

        var redis = await RunJob(onRedis, Path.Combine(ClusterFixture.Folder, "out-redis"));
        var postgres = await RunJob(onPostgres, Path.Combine(ClusterFixture.Folder, "out-postgres"), _ => activeSilos =
            PostgresServer.Scalar<long>(database, "SELECT count(*) FROM OrleansMembershipTable WHERE DeploymentId = @id AND Status = 3", ("id", onPostgres.ClusterId)));
        TestContext.Progress.WriteLine($"300 images, 10 shards, 2 silos, 1 thread each: Redis job {redis.Job.TotalSeconds:F2} s ({redis.Total.TotalSeconds:F2} s with the " +
            $"silos' start), PostgreSQL job {postgres.Job.TotalSeconds:F2} s ({postgres.Total.TotalSeconds:F2} s)");

        var byPath = redis.Rows.ToDictionary(r => r.Path, r => r.Embedding);
        Assert.That(postgres.Rows.Select(r => r.Path), Is.EquivalentTo(byPath.Keys));
        Assert.That(postgres.Rows.Where(r => !r.Embedding.SequenceEqual(byPath[r.Path])).Select(r => r.Path), Is.Empty, "rows whose values differ from the Redis run's");
        // The state really went to PostgreSQL: both silos in its membership table while the job ran, a stored state for
        // the job and each of its 10 shards, and the job's reminder, added at its start and removed at its end. The job
        // may end before any query sees the reminder row, so the table's statistics (flushed within seconds) tell.
        Assert.That(activeSilos, Is.EqualTo(2), "active silos in PostgreSQL's membership table while the job ran");
        Assert.That(PostgresServer.Scalar<long>(database, "SELECT count(*) FROM OrleansStorage WHERE ServiceId = @id", ("id", onPostgres.ClusterId)), Is.EqualTo(11));
        Assert.That(PostgresServer.Scalar<long>(database, "SELECT count(*) FROM OrleansRemindersTable WHERE ServiceId = @id", ("id", onPostgres.ClusterId)), Is.Zero,
            "the completed job removed its reminder");
        var clock = Stopwatch.StartNew();
        (long Inserted, long Deleted) reminders;
        while ((reminders = (PostgresServer.Scalar<long>(database, "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'orleansreminderstable'"),
                   PostgresServer.Scalar<long>(database, "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = 'orleansreminderstable'"))) != (1, 1)
               && clock.Elapsed < TimeSpan.FromSeconds(30))
            await Task.Delay(200);
        Assert.That(reminders, Is.EqualTo((1L, 1L)), "(reminder rows inserted, deleted) in PostgreSQL");
    }

    [Test]
    public void TwoSiloProcessesOnPostgresRunAJobSubmittedFromTheCommandLine()
    {
        var database = Postgres.CreateDatabase("cli");
        var output = Path.Combine(ClusterFixture.Folder, "out-postgres-cli");
        string[] store = ["--postgres", database, "--cluster-id", "cli-" + Guid.NewGuid().ToString("N")[..8]];
        var silos = new List<(Process Process, List<string> Lines)>();
        Process? client = null;
        try
        {
            // One after the other: the first creates the schema (its start log says so), the second finds it.
            for (var i = 0; i < 2; i++)
            {
                var lines = new List<string>();
                silos.Add((SiloProcessTests.Start(lines, ["cluster", "silo", .. store, "--port", $"{ClusterFixture.FreePort()}", "--gateway-port", $"{ClusterFixture.FreePort()}", "--threads", "1"]), lines));
                SiloProcessTests.WaitFor(() => { lock (lines) return lines.Any(l => l.StartsWith("Silo up")); }, TimeSpan.FromMinutes(1), "a silo to start");
            }
            lock (silos[0].Lines) Assert.That(silos[0].Lines, Has.Some.Contains("PostgreSQL 127.0.0.1:").And.Some.Contains("Created Orleans' PostgreSQL schema"));
            lock (silos[1].Lines) Assert.That(silos[1].Lines, Has.None.Contains("Created Orleans' PostgreSQL schema"));

            var clientLines = new List<string>();
            client = SiloProcessTests.Start(clientLines, ["cluster", "submit", .. store, "--model", ClusterFixture.Encoder, "--data", ClusterFixture.Images, "--out", output,
                "--shard-size", "32", "--batch-size", "16", "--wait"]);
            var finished = client.WaitForExit(TimeSpan.FromMinutes(4));
            lock (clientLines) TestContext.Progress.WriteLine(string.Join("\n", clientLines));
            Assert.That(finished, Is.True, "the job did not finish in 4 minutes");
            Assert.That(client.ExitCode, Is.Zero);
            EmbeddingJobTests.AssertEachImageOnceAndEqual(EmbeddingJobTests.ReadOutput(output).Rows);
        }
        finally
        {
            foreach (var process in silos.Select(s => s.Process).Append(client).OfType<Process>())
            {
                if (!process.HasExited) process.Kill();
                process.WaitForExit(10_000);
                process.Dispose();
            }
        }
    }

    [Test]
    public async Task TheSchemaIsCreatedOnceByConcurrentSilosAndLeftAloneAfterwards()
    {
        var database = Postgres.CreateDatabase("schema");
        // Three at once, as silos starting together on an empty database: the lock lets one create, the others find it.
        var ran = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => PostgresSchema.EnsureAsync(database)));
        Assert.That(ran.SelectMany(r => r), Is.EqualTo(new[] { "PostgreSQL-Main.sql", "PostgreSQL-Clustering.sql", "PostgreSQL-Persistence.sql", "PostgreSQL-Reminders.sql" }));
        Assert.That(await PostgresSchema.EnsureAsync(database), Is.Empty);
        // Every query Orleans' providers read: 9 for clustering, 4 for persistence, 7 for reminders.
        Assert.That(PostgresServer.Scalar<long>(database, "SELECT count(*) FROM OrleansQuery"), Is.EqualTo(20));
    }

    [Test]
    public void AUserWhoMayNotCreateTablesIsToldSoAndNothingIsHalfMade()
    {
        var owner = Postgres.CreateDatabase("no_rights");
        PostgresServer.Scalar<int>(owner, "CREATE ROLE reader LOGIN; SELECT 1");
        // PostgreSQL 15: only the database's owner may create in its public schema.
        var reader = owner.Replace("Username=postgres", "Username=reader");
        Assert.That(() => PostgresSchema.EnsureAsync(reader),
            Throws.InvalidOperationException.With.Message.StartsWith("Creating Orleans' orleansquery table with PostgreSQL-Main.sql failed: permission denied"));
        Assert.That(PostgresServer.Scalar<long>(owner, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), Is.Zero);
    }

    [Test]
    public void AStoreMustBeRedisOrPostgresNotBothNorNeither()
    {
        Assert.That(() => new ClusterStoreOptions { Redis = "127.0.0.1:6379", Postgres = "Host=127.0.0.1" }.Validate(),
            Throws.ArgumentException.With.Message.StartsWith("Both Redis (127.0.0.1:6379) and Postgres are set"));
        Assert.That(() => new ClusterStoreOptions().Validate(), Throws.ArgumentException.With.Message.StartsWith("Neither Redis (host:port) nor Postgres (a connection string) is set"));
        Assert.That(() => new ClusterStoreOptions { Redis = " " }.Validate(), Throws.ArgumentException.With.Message.StartsWith("Neither"), "a blank value is not given");
        var redisWithBlankPostgres = new ClusterStoreOptions { Redis = "127.0.0.1:6379", Postgres = " " };
        Assert.That(redisWithBlankPostgres.Validate, Throws.Nothing);
        Assert.That(redisWithBlankPostgres.ToString(), Is.EqualTo("Redis 127.0.0.1:6379"));
        Assert.That(new ClusterStoreOptions { Postgres = "Host=db;Port=5433;Database=orleans;Username=u;Password=secret" }.ToString(),
            Is.EqualTo("PostgreSQL db:5433/orleans"), "the password stays out of the silo's start line");
        Assert.That(() => new ClusterStoreOptions { Postgres = "Hots=db" }.Validate(),
            Throws.ArgumentException.With.Message.StartsWith("Postgres is not a PostgreSQL connection string").And.Message.Contains("hots"));
        // The silo and client builders check before configuring anything.
        var silo = new ClusterSiloOptions { Redis = "127.0.0.1:6379", Postgres = "Host=127.0.0.1" };
        Assert.That(() => Host.CreateApplicationBuilder().UseOrleans(s => s.UseContrastiveCluster(silo)).Build(), Throws.ArgumentException.With.Message.StartsWith("Both"));
        Assert.That(() => Host.CreateApplicationBuilder().UseOrleansClient(c => c.UseContrastiveCluster(new ClusterStoreOptions())).Build(),
            Throws.ArgumentException.With.Message.StartsWith("Neither"));
    }
}
