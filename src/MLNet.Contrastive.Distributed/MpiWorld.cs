using System.Diagnostics;

namespace MLNet.Contrastive.Distributed;

/// <summary>
/// MPI_COMM_WORLD of a process launched by <c>mpiexec</c>: its rank and size and the collectives data-parallel training
/// needs (float sum allreduce in place, allgather, broadcast, barrier). Every call checks MPI's return code (errors
/// return rather than abort) and throws <see cref="MpiException"/>. One per process: MPI initialises once and, after
/// <see cref="Dispose"/> (MPI_Finalize), cannot start again.
/// </summary>
public sealed unsafe class MpiWorld : IDisposable
{
    /// <summary>
    /// Floats per MPI call: a larger buffer goes in buckets of this size, so that counts stay within MPI's int and
    /// no call holds more than 64 MB of the network's buffers.
    /// </summary>
    public const int BucketFloats = 16 << 20;

    private static MpiWorld? started;
    private bool finalized;

    private MpiWorld(int rank, int size) => (Rank, Size) = (rank, size);

    /// <summary>This process's rank, 0 … <see cref="Size"/> − 1.</summary>
    public int Rank { get; }

    /// <summary>The number of ranks the job was launched with.</summary>
    public int Size { get; }

    /// <summary>
    /// Initialises MPI (once per process) and returns the world. Throws <see cref="InvalidOperationException"/> when the
    /// process was not launched by MPICH's <c>mpiexec</c> (a plain process would otherwise start as a world of one), and
    /// <see cref="DllNotFoundException"/> when MPICH is not installed.
    /// </summary>
    public static MpiWorld Start()
    {
        if (started is { finalized: false }) return started;
        if (started is not null) throw new InvalidOperationException("MPI was finalized in this process; it cannot start again.");
        // Hydra (MPICH's mpiexec) gives every rank PMI_RANK and PMI_SIZE; without them MPI_Init makes a singleton.
        if (Environment.GetEnvironmentVariable("PMI_SIZE") is null || Environment.GetEnvironmentVariable("PMI_RANK") is null)
            throw new InvalidOperationException(
                "This process was not launched by mpiexec (no PMI_RANK/PMI_SIZE in its environment): start N ranks with " +
                "`mpiexec -n N <command> … --distributed` (MPICH's mpiexec, mpiexec.mpich on Debian).");
        int flag;
        MpiNative.Check(MpiNative.Initialized(&flag), "MPI_Initialized");
        if (flag == 0) MpiNative.Check(MpiNative.Init(0, 0), "MPI_Init");
        // The default handler aborts the job on any error; return codes let a failure say which call failed.
        MpiNative.Check(MpiNative.CommSetErrhandler(MpiNative.CommWorld, MpiNative.ErrorsReturn), "MPI_Comm_set_errhandler");
        int rank, size;
        MpiNative.Check(MpiNative.CommRank(MpiNative.CommWorld, &rank), "MPI_Comm_rank");
        MpiNative.Check(MpiNative.CommSize(MpiNative.CommWorld, &size), "MPI_Comm_size");
        return started = new MpiWorld(rank, size);
    }

    /// <summary>Replaces every rank's <paramref name="values"/> with their element-wise sum over all ranks.</summary>
    public void AllReduceSum(Span<float> values)
    {
        fixed (float* pointer = values) AllReduceSum((nint)pointer, values.Length);
    }

    /// <summary><see cref="AllReduceSum(Span{float})"/> on <paramref name="count"/> floats at <paramref name="pointer"/>, in buckets of <see cref="BucketFloats"/>.</summary>
    internal void AllReduceSum(nint pointer, long count)
    {
        ThrowIfFinalized();
        for (long start = 0; start < count; start += BucketFloats)
        {
            var bucket = (int)Math.Min(BucketFloats, count - start);
            using var wait = Waiting("MPI_Allreduce");
            MpiNative.Check(MpiNative.Allreduce(MpiNative.InPlace, pointer + (nint)(start * sizeof(float)), bucket, MpiNative.Float, MpiNative.Sum, MpiNative.CommWorld), "MPI_Allreduce");
        }
    }

    /// <summary>Every rank's <paramref name="local"/> (the same length on all ranks), concatenated by rank into <paramref name="all"/> (<see cref="Size"/> × that length).</summary>
    public void AllGather(ReadOnlySpan<float> local, Span<float> all)
    {
        ThrowIfFinalized();
        if (all.Length != (long)local.Length * Size)
            throw new ArgumentException($"The gathered buffer holds {all.Length} floats; {Size} ranks × {local.Length} need {(long)local.Length * Size}.", nameof(all));
        using var wait = Waiting("MPI_Allgather");
        fixed (float* send = local)
        fixed (float* receive = all)
            MpiNative.Check(MpiNative.Allgather((nint)send, local.Length, MpiNative.Float, (nint)receive, local.Length, MpiNative.Float, MpiNative.CommWorld), "MPI_Allgather");
    }

    /// <summary>Replaces every rank's <paramref name="values"/> with rank <paramref name="root"/>'s.</summary>
    public void Broadcast(Span<float> values, int root = 0)
    {
        fixed (float* pointer = values) Broadcast((nint)pointer, values.Length, root);
    }

    /// <summary><see cref="Broadcast(Span{float}, int)"/> on <paramref name="count"/> floats at <paramref name="pointer"/>, in buckets.</summary>
    internal void Broadcast(nint pointer, long count, int root = 0)
    {
        ThrowIfFinalized();
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"The root must be a rank, 0 to {Size - 1}.");
        for (long start = 0; start < count; start += BucketFloats)
        {
            var bucket = (int)Math.Min(BucketFloats, count - start);
            using var wait = Waiting("MPI_Bcast");
            MpiNative.Check(MpiNative.Bcast(pointer + (nint)(start * sizeof(float)), bucket, MpiNative.Float, root, MpiNative.CommWorld), "MPI_Bcast");
        }
    }

    /// <summary>Returns when every rank has called it.</summary>
    public void Barrier()
    {
        ThrowIfFinalized();
        using var wait = Waiting("MPI_Barrier");
        MpiNative.Check(MpiNative.Barrier(MpiNative.CommWorld), "MPI_Barrier");
    }

    /// <summary>
    /// How long a collective may wait for the other ranks before this rank reports it on stderr and ends itself, which
    /// makes mpiexec end the job: a rank that is alive but no longer steps (a hung data read, a deadlock) would otherwise
    /// hold the others in their next collective for ever. Every waiting rank names itself, so the stalled one is the rank
    /// that does not. Null: wait for ever. Default 10 minutes (a step of a large model on a slow machine stays far below).
    /// </summary>
    public TimeSpan? StallTimeout { get; set; } = TimeSpan.FromMinutes(10);

    private Watchdog? watchdog;

    /// <summary>Marks a collective under way until disposed; past <see cref="StallTimeout"/> the watchdog ends the process.</summary>
    private Watchdog.Wait Waiting(string call) => (watchdog ??= new Watchdog(this)).Enter(call);

    /// <summary>A timer that checks, every quarter second, how long the collective under way has waited.</summary>
    private sealed class Watchdog
    {
        private readonly MpiWorld world;
        private readonly Timer timer;
        private readonly Stopwatch clock = new();
        private string? call;

        public Watchdog(MpiWorld world)
        {
            this.world = world;
            timer = new Timer(_ => Check(), null, 250, 250);
        }

        public Wait Enter(string name)
        {
            lock (clock)
            {
                call = name;
                clock.Restart();
            }
            return new Wait(this);
        }

        public void Stop() => timer.Dispose();

        private void Leave()
        {
            lock (clock) call = null;
        }

        private void Check()
        {
            string? waiting;
            TimeSpan waited;
            lock (clock) (waiting, waited) = (call, clock.Elapsed);
            if (waiting is null || world.StallTimeout is not { } limit || waited < limit) return;
            Console.Error.WriteLine($"Rank {world.Rank} of {world.Size} waited {waited.TotalSeconds:F0} s in {waiting} for the other ranks " +
                $"(MpiWorld.StallTimeout {limit.TotalSeconds:F0} s): a rank that does not report this stalled, or the network hangs. Ending this rank, and with it the job.");
            Console.Error.Flush();
            timer.Dispose();
            // MPI_Abort may not be called while this process's main thread is inside MPI; an ended rank ends the job.
            Process.GetCurrentProcess().Kill();
        }

        public readonly struct Wait(Watchdog owner) : IDisposable
        {
            public void Dispose() => owner.Leave();
        }
    }

    /// <summary>MPI_Finalize: every rank must call it (a rank that exits without it makes mpiexec abort the job).</summary>
    public void Dispose()
    {
        if (finalized) return;
        finalized = true;
        watchdog?.Stop();
        int flag;
        MpiNative.Check(MpiNative.Finalized(&flag), "MPI_Finalized");
        if (flag == 0) MpiNative.Check(MpiNative.Finalize(), "MPI_Finalize");
    }

    private void ThrowIfFinalized()
    {
        if (finalized) throw new ObjectDisposedException(nameof(MpiWorld), "MPI was finalized.");
    }
}
