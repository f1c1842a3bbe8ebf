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
/// </summary>
internal readonly struct CollectionPause : IDisposable
{
    /// <summary>Bytes the whole process may allocate during a pause; a step allocates well under 1 MB of managed memory.</summary>
    private const long Budget = 64L << 20;

    private readonly bool started;

    private CollectionPause(bool started) => this.started = started;

    /// <summary>Starts a pause unless one is already running (nested steps, or the host's own no-GC region).</summary>
    public static CollectionPause Begin() =>
        new(GCSettings.LatencyMode != GCLatencyMode.NoGCRegion && GC.TryStartNoGCRegion(Budget));

    public void Dispose()
    {
        // A collection forced by the budget already ended the region; ending it again would throw.
        if (started && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
    }
}
