using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using StackExchange.Redis;

namespace MLNet.Contrastive.Cluster;

/// <summary>Settings of a silo that runs embedding jobs.</summary>
public sealed class ClusterSiloOptions
{
    /// <summary>Redis, host:port: membership, job and shard state, reminders. Required.</summary>
    public string Redis { get; set; } = "";

    /// <summary>Silo-to-silo port. Default 11111; several silos on one machine each take their own.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port clients connect to. Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Batches this silo scores at once, each on one thread. Default: all processors.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>Names the cluster; silos and clients of one cluster share it. Default "mlnet-contrastive".</summary>
    public string ClusterId { get; set; } = ClusterHosting.DefaultClusterId;
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

    /// <summary>A silo with Redis membership, storage and reminders, listening on loopback-reachable ports.</summary>
    public static ISiloBuilder UseContrastiveCluster(this ISiloBuilder silo, ClusterSiloOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Redis, nameof(options.Redis));
        silo.UseRedisClustering(o => o.ConfigurationOptions = Redis(options.Redis))
            .Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (options.ClusterId, options.ClusterId))
            .ConfigureEndpoints(IPAddress.Loopback, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: true);
        // Fast failure detection: a lost silo's shards are re-driven within seconds, not minutes.
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(2);
            o.NumMissedProbesLimit = 2;
            o.NumVotesForDeathDeclaration = 1;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(5);
        });
        return silo.AddContrastiveJobs(options.Redis, options.Threads);
    }

    /// <summary>The job grains' storage, reminders and scorer threads on a silo whose clustering is set elsewhere (tests).</summary>
    public static ISiloBuilder AddContrastiveJobs(this ISiloBuilder silo, string redis, int threads)
    {
        if (threads <= 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "The scorer threads must be positive.");
        silo.AddRedisGrainStorage(StorageName, o => o.ConfigurationOptions = Redis(redis))
            .UseRedisReminderService(o => o.ConfigurationOptions = Redis(redis));
        silo.Services.AddSingleton(new ScorerThrottle(threads));
        return silo;
    }

    /// <summary>A client of the cluster whose membership is in <paramref name="redis"/>.</summary>
    public static IClientBuilder UseContrastiveCluster(this IClientBuilder client, string redis, string clusterId = DefaultClusterId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(redis);
        // The client only submits and polls: a call through a lost silo's gateway should fail fast and be retried, not wait 30 s.
        return client.UseRedisClustering(o => o.ConfigurationOptions = Redis(redis))
            .Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (clusterId, clusterId))
            .Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(5));
    }

    private static ConfigurationOptions Redis(string endpoint)
    {
        var options = ConfigurationOptions.Parse(endpoint);
        options.AbortOnConnectFail = false;
        return options;
    }
}
