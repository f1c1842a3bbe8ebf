using System.Runtime;

namespace MLNet.Contrastive.Runtime;

/// <summary>
/// Holds off garbage collection while a step of native TorchSharp work runs.
/// TorchSharp 0.107 frees every implicitly converted <c>Scalar</c> (the 1 in <c>x + 1</c>, the alpha inside its own
/// optimizers) in a finalizer, and that object is already unreachable while the native call still reads it
/// (dotnet/TorchSharp#1434). A collection that another thread triggers mid-call lets the finalizer thread free it:
/// a "toFloat" check failure in libtorch, or a silently wrong value. With no collection during the step, no
/// finalizer frees anything the step uses. Starting a pause runs one collection (well under a millisecond here);
/// allocations past <see cref="Budget"/> end the pause early, as does the runtime when it must.
/// The no-GC region is one per process, so pauses are counted process-wide: the region starts with the first open
/// pause and ends with the last, whichever threads they run on (one thread's pause ending no longer ends another's),
/// and a pause begun after the region lapsed (budget spent) starts it again.
/// </summary>
internal readonly struct CollectionPause : IDisposable
{
    /// <summary>Bytes the whole process may allocate during a pause; a step allocates well under 1 MB of managed memory.</summary>
    private const long Budget = 64L << 20;

    private static readonly Lock Gate = new();
    private static int open;
    private static bool ownsRegion;

    private readonly bool counted;

    private CollectionPause(bool counted) => this.counted = counted;

    /// <summary>Starts a pause: the no-GC region unless one is running (another pause's, or the host's own).</summary>
    public static CollectionPause Begin()
    {
        lock (Gate)
        {
            if (GCSettings.LatencyMode != GCLatencyMode.NoGCRegion && GC.TryStartNoGCRegion(Budget)) ownsRegion = true;
            open++;
            return new CollectionPause(true);
        }
    }

    public void Dispose()
    {
        if (!counted) return;
        lock (Gate)
        {
            if (--open > 0 || !ownsRegion) return;
            ownsRegion = false;
            // A collection forced by the budget already ended the region; ending it again would throw.
            if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }
}
