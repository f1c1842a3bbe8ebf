using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MLNet.Contrastive.Cluster;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>cluster silo|submit|status|cancel</c>: embedding jobs on an Orleans cluster whose membership and state are in Redis or PostgreSQL.</summary>
internal static class ClusterCommand
{
    public static Command Create()
    {
        var command = new Command("cluster", "Embed images on a Microsoft Orleans cluster (silos that share a Redis server or a PostgreSQL database, and the data's file system).");
        command.Subcommands.Add(Silo());
        command.Subcommands.Add(Submit());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(Cancel());
        return command;
    }

    /// <summary>
    /// Where the cluster keeps its membership, job state and reminders: <c>--redis</c> or <c>--postgres</c>, exactly one
    /// (<see cref="ClusterStoreOptions.Validate"/> says which is wrong), and <c>--cluster-id</c>.
    /// </summary>
    private sealed class StoreOptions
    {
        public Option<string?> Redis { get; } = new("--redis") { Description = "Redis server, host:port: cluster membership, job state and reminders (or --postgres)." };

        public Option<string?> Postgres { get; } = new("--postgres")
        {
            Description = "PostgreSQL connection string (\"Host=…;Database=…;Username=…;Password=…\"): cluster membership, job state and reminders " +
                "(or --redis). A silo creates Orleans' tables there when they are missing.",
        };

        /// <summary>Several clusters can share one store under different ids.</summary>
        public Option<string> ClusterId { get; } =
            new("--cluster-id") { Description = "The cluster's name: silos and clients of one cluster give the same.", DefaultValueFactory = _ => ClusterHosting.DefaultClusterId };

        /// <summary>Adds the three options to <paramref name="command"/>, ahead of its own.</summary>
        public Command AddTo(Command command)
        {
            foreach (var option in new Option[] { ClusterId, Postgres, Redis }) command.Options.Insert(0, option);
            return command;
        }

        /// <summary>The store the command line names; throws when it names both or neither.</summary>
        public T Read<T>(ParseResult parse, T options) where T : ClusterStoreOptions
        {
            (options.Redis, options.Postgres, options.ClusterId) = (parse.GetValue(Redis), parse.GetValue(Postgres), parse.GetValue(ClusterId)!);
            options.Validate();
            return options;
        }
    }

    private static Command Silo()
    {
        var store = new StoreOptions();
        var port = new Option<int>("--port") { Description = "Silo-to-silo port (each silo on a machine takes its own).", DefaultValueFactory = _ => 11111 };
        var gateway = new Option<int>("--gateway-port") { Description = "Port clients connect to.", DefaultValueFactory = _ => 30000 };
        var threads = new Option<int>("--threads") { Description = "Batches scored at once, one thread each.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var command = store.AddTo(new Command("silo", "Run a silo until Ctrl+C or SIGTERM.") { port, gateway, threads });
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var options = store.Read(parse, new ClusterSiloOptions { SiloPort = parse.GetValue(port), GatewayPort = parse.GetValue(gateway), Threads = parse.GetValue(threads) });
            var builder = Host.CreateApplicationBuilder();
            Quiet(builder);
            builder.UseOrleans(silo => silo.UseContrastiveCluster(options));
            using var host = builder.Build();
            host.Start();
            Console.WriteLine($"Silo up on port {options.SiloPort} (gateway {options.GatewayPort}), {options.Threads} scoring thread(s), {options}.");
            host.WaitForShutdown();
            return 0;
        }));
        return command;
    }

    private static Command Submit()
    {
        var store = new StoreOptions();
        var model = new Option<string>("--model") { Description = "encoder.onnx, or the folder pretrain wrote (or its model.zip).", Required = true };
        var data = new Option<string>("--data") { Description = "Image folder (recursive) or a text file with one image path a line.", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder, at the same path on every silo.", Required = true };
        var format = new Option<string>("--format") { Description = "parquet or csv.", DefaultValueFactory = _ => "parquet" };
        format.AcceptOnlyFromAmong("parquet", "csv");
        var shardSize = new Option<int>("--shard-size") { Description = "Images per shard (the work redone when a silo is lost).", DefaultValueFactory = _ => 1024 };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per ONNX Runtime call.", DefaultValueFactory = _ => 256 };
        var shardsPerSilo = new Option<int>("--shards-per-silo") { Description = "Shards in flight per active silo.", DefaultValueFactory = _ => 2 };
        var job = new Option<string?>("--job") { Description = "Job id (default: a new one)." };
        var wait = new Option<bool>("--wait") { Description = "Follow the job; exit 0 when it completes, 1 when it fails or is cancelled." };
        var command = store.AddTo(new Command("submit", "Submit an embedding job (the model is checked here: one that does not load is refused).")
            { model, data, output, format, shardSize, batchSize, shardsPerSilo, job, wait });
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var cluster = store.Read(parse, new ClusterStoreOptions());
            // Before connecting: a broken model is refused even when the cluster cannot be reached.
            EmbeddingJobs.CheckModel(parse.GetValue(model)!);
            return WithClient(cluster, async jobs =>
            {
                var id = await jobs.SubmitAsync(new EmbeddingJobOptions
                {
                    Model = parse.GetValue(model)!, Data = parse.GetValue(data)!, Output = parse.GetValue(output)!, Format = parse.GetValue(format)!,
                    ShardSize = parse.GetValue(shardSize), BatchSize = parse.GetValue(batchSize), ShardsPerSilo = parse.GetValue(shardsPerSilo),
                    JobId = parse.GetValue(job),
                });
                Console.WriteLine($"Submitted {id}.");
                if (!parse.GetValue(wait)) return 0;
                var status = await jobs.WaitAsync(id, s => Console.WriteLine(s), cancellation: CommandRunner.Interrupted);
                // The job's own clock: from its start to its last shard, whatever the polling interval.
                if (status.State == JobState.Completed)
                    Console.WriteLine($"{status.Rows:N0} embeddings in {status.Elapsed.TotalSeconds:F2} s ({status.Rows / status.Elapsed.TotalSeconds:F0} images/s).");
                return status.State == JobState.Completed ? 0 : 1;
            });
        }));
        return command;
    }

    private static Command Status() =>
        JobCommand("status", "Print a job's progress; exit 1 when there is no such job.", async (jobs, id) =>
        {
            var status = await jobs.StatusAsync(id);
            Console.WriteLine(status);
            return status.State == JobState.Unknown ? 1 : 0;
        });

    private static Command Cancel() =>
        JobCommand("cancel", "Start no further shards of a job (shards under way finish).", async (jobs, id) =>
        {
            await jobs.CancelAsync(id);
            Console.WriteLine(await jobs.StatusAsync(id));
            return 0;
        });

    /// <summary>A command on one job: <c>name JOB --redis host:port|--postgres "connection string" [--cluster-id id]</c>.</summary>
    private static Command JobCommand(string name, string description, Func<EmbeddingJobs, string, Task<int>> body)
    {
        var store = new StoreOptions();
        var job = new Argument<string>("job") { Description = "The job id submit printed." };
        var command = store.AddTo(new Command(name, description) { job });
        command.SetAction(parse => CommandRunner.Run(() => WithClient(store.Read(parse, new ClusterStoreOptions()), jobs => body(jobs, parse.GetValue(job)!))));
        return command;
    }

    /// <summary>Connects a client to the cluster, runs <paramref name="body"/>, disconnects.</summary>
    private static int WithClient(ClusterStoreOptions store, Func<EmbeddingJobs, Task<int>> body)
    {
        var builder = Host.CreateApplicationBuilder();
        Quiet(builder);
        builder.UseOrleansClient(client => client.UseContrastiveCluster(store));
        using var host = builder.Build();
        host.StartAsync().GetAwaiter().GetResult();
        try
        {
            return body(new EmbeddingJobs(host.Services.GetRequiredService<IClusterClient>())).GetAwaiter().GetResult();
        }
        finally
        {
            host.StopAsync().GetAwaiter().GetResult();
        }
    }

    /// <summary>Orleans logs every membership and directory step at Information; warnings are what an operator needs.</summary>
    private static void Quiet(HostApplicationBuilder builder)
    {
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("MLNet.Contrastive.Cluster", LogLevel.Information);
    }
}
