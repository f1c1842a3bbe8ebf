using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using StackExchange.Redis;

namespace MLNet.Contrastive.Cluster;

/// <summary>
/// Where a cluster keeps its membership, job and shard state and reminders: a Redis server or a PostgreSQL database
/// (through Orleans' ADO.NET providers), exactly one of the two. Silos and clients of one cluster give the same.
/// </summary>
public class ClusterStoreOptions
{
    /// <summary>Redis, host:port. Give this or <see cref="Postgres"/>.</summary>
    public string? Redis { get; set; }

    /// <summary>
    /// A PostgreSQL (Npgsql) connection string, e.g. <c>Host=db;Port=5432;Database=orleans;Username=orleans;Password=…</c>.
    /// Give this or <see cref="Redis"/>. A silo creates Orleans' tables there when they are missing (<see cref="PostgresSchema"/>).
    /// </summary>
    public string? Postgres { get; set; }

    /// <summary>Names the cluster; silos and clients of one cluster share it. Default "mlnet-contrastive".</summary>
    public string ClusterId { get; set; } = ClusterHosting.DefaultClusterId;

    /// <summary>Whether <see cref="Postgres"/> is given (a blank value is not).</summary>
    internal bool UsesPostgres => !string.IsNullOrWhiteSpace(Postgres);

    /// <summary>Throws unless exactly one of <see cref="Redis"/> and <see cref="Postgres"/> is given, and <see cref="ClusterId"/> is.</summary>
    /// <exception cref="ArgumentException">Both stores or neither are given, or the cluster id is blank; the message names the option.</exception>
    public void Validate()
    {
        var (redis, postgres) = (!string.IsNullOrWhiteSpace(Redis), UsesPostgres);
        if (redis && postgres)
            throw new ArgumentException($"Both {nameof(Redis)} ({Redis}) and {nameof(Postgres)} are set: a cluster keeps its membership, state and reminders in one store; give exactly one.", nameof(Postgres));
        if (!redis && !postgres)
            throw new ArgumentException($"Neither {nameof(Redis)} (host:port) nor {nameof(Postgres)} (a connection string) is set: give exactly one, where the cluster keeps its membership, state and reminders.", nameof(Redis));
        ArgumentException.ThrowIfNullOrWhiteSpace(ClusterId, nameof(ClusterId));
        if (postgres)
        {
            try
            {
                _ = new NpgsqlConnectionStringBuilder(Postgres);
            }
            catch (ArgumentException e)
            {
                // Npgsql's message names the bad keyword; the string itself may hold a password, so it is not repeated.
                throw new ArgumentException($"{nameof(Postgres)} is not a PostgreSQL connection string (Host=…;Database=…;Username=…): {e.Message}", nameof(Postgres), e);
            }
        }
    }

    /// <summary>The store in words for a log line: Redis host:port, or PostgreSQL host/database (never the password).</summary>
    public override string ToString()
    {
        if (!UsesPostgres) return $"Redis {Redis}";
        var connection = new NpgsqlConnectionStringBuilder(Postgres);
        return $"PostgreSQL {connection.Host}:{connection.Port}/{connection.Database}";
    }
}

/// <summary>Settings of a silo that runs embedding jobs: its store (<see cref="ClusterStoreOptions"/>), ports and scorer threads.</summary>
public sealed class ClusterSiloOptions : ClusterStoreOptions
{
    /// <summary>Silo-to-silo port. Default 11111; several silos on one machine each take their own.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port clients connect to. Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Batches this silo scores at once, each on one thread. Default: all processors.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;
}

/// <summary>Configures Orleans silos and clients for embedding jobs.</summary>
public static class ClusterHosting
{
    /// <summary>The grain storage provider holding job and shard state.</summary>
    public const string StorageName = "contrastive";

    /// <summary>The default cluster and service id.</summary>
    public const string DefaultClusterId = "mlnet-contrastive";

    /// <summary>How often a job re-sends Run to shards it has not heard from.</summary>
    public static TimeSpan RedriveInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the reminder wakes a job whose silo was lost (Orleans' smallest reminder period).</summary>
    public static TimeSpan ReminderPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>A silo with membership, storage and reminders in Redis or PostgreSQL, listening on loopback-reachable ports.</summary>
    /// <exception cref="ArgumentException">Both stores or neither are given (<see cref="ClusterStoreOptions.Validate"/>).</exception>
    public static ISiloBuilder UseContrastiveCluster(this ISiloBuilder silo, ClusterSiloOptions options)
    {
        options.Validate();
        if (options.UsesPostgres)
            silo.UseAdoNetClustering(o => (o.Invariant, o.ConnectionString) = (PostgresSchema.Invariant, options.Postgres));
        else
            silo.UseRedisClustering(o => o.ConfigurationOptions = Redis(options.Redis!));
        silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (options.ClusterId, options.ClusterId))
            .ConfigureEndpoints(IPAddress.Loopback, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: true);
        // Fast failure detection: a lost silo's shards are re-driven within seconds, not minutes.
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(2);
            o.NumMissedProbesLimit = 2;
            o.NumVotesForDeathDeclaration = 1;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(5);
        });
        return silo.AddContrastiveJobs(options, options.Threads);
    }

    /// <summary>The job grains' storage and reminders in Redis at <paramref name="redis"/> (host:port), and scorer threads, on a silo whose clustering is set elsewhere (tests).</summary>
    public static ISiloBuilder AddContrastiveJobs(this ISiloBuilder silo, string redis, int threads) =>
        silo.AddContrastiveJobs(new ClusterStoreOptions { Redis = redis }, threads);

    /// <summary>
    /// The job grains' storage and reminders in <paramref name="store"/>, and scorer threads, on a silo whose clustering
    /// is set elsewhere (tests). With PostgreSQL, the silo creates Orleans' missing tables before anything else starts.
    /// </summary>
    public static ISiloBuilder AddContrastiveJobs(this ISiloBuilder silo, ClusterStoreOptions store, int threads)
    {
        store.Validate();
        if (threads <= 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "The scorer threads must be positive.");
        if (store.UsesPostgres)
        {
            var postgres = store.Postgres!;
            silo.AddAdoNetGrainStorage(StorageName, o => (o.Invariant, o.ConnectionString) = (PostgresSchema.Invariant, postgres))
                .UseAdoNetReminderService(o => (o.Invariant, o.ConnectionString) = (PostgresSchema.Invariant, postgres));
            silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(services =>
                new PostgresSchemaSetup(postgres, services.GetRequiredService<ILogger<PostgresSchemaSetup>>()));
        }
        else
        {
            silo.AddRedisGrainStorage(StorageName, o => o.ConfigurationOptions = Redis(store.Redis!))
                .UseRedisReminderService(o => o.ConfigurationOptions = Redis(store.Redis!));
        }
        silo.Services.AddSingleton(new ScorerThrottle(threads));
        return silo;
    }

    /// <summary>A client of the cluster whose membership is in Redis at <paramref name="redis"/> (host:port).</summary>
    public static IClientBuilder UseContrastiveCluster(this IClientBuilder client, string redis, string clusterId = DefaultClusterId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(redis);
        return client.UseContrastiveCluster(new ClusterStoreOptions { Redis = redis, ClusterId = clusterId });
    }

    /// <summary>A client of the cluster whose membership is in <paramref name="store"/> (Redis or PostgreSQL).</summary>
    /// <exception cref="ArgumentException">Both stores or neither are given (<see cref="ClusterStoreOptions.Validate"/>).</exception>
    public static IClientBuilder UseContrastiveCluster(this IClientBuilder client, ClusterStoreOptions store)
    {
        store.Validate();
        if (store.UsesPostgres)
            client.UseAdoNetClustering(o => (o.Invariant, o.ConnectionString) = (PostgresSchema.Invariant, store.Postgres));
        else
            client.UseRedisClustering(o => o.ConfigurationOptions = Redis(store.Redis!));
        // The client only submits and polls: a call through a lost silo's gateway should fail fast and be retried, not wait 30 s.
        return client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (store.ClusterId, store.ClusterId))
            .Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(5));
    }

    private static ConfigurationOptions Redis(string endpoint)
    {
        var options = ConfigurationOptions.Parse(endpoint);
        options.AbortOnConnectFail = false;
        return options;
    }
}

/// <summary>Creates Orleans' PostgreSQL tables when they are missing, first thing in a silo's start (before membership, storage and reminders read them).</summary>
internal sealed class PostgresSchemaSetup(string connectionString, ILogger<PostgresSchemaSetup> log) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(PostgresSchemaSetup), ServiceLifecycleStage.First, async cancellation =>
        {
            var ran = await PostgresSchema.EnsureAsync(connectionString, cancellation);
            if (ran.Count > 0) log.LogInformation("Created Orleans' PostgreSQL schema: {Scripts}.", string.Join(", ", ran));
        });
}
