using System.Reflection;
using System.Runtime.InteropServices;

namespace MLNet.Contrastive.Distributed;

/// <summary>
/// The few functions of MPICH's C ABI that data-parallel training calls. MPICH's handles are plain ints and its ABI
/// has been stable since MPICH 3.1 (libmpi.so.12; Debian ships it as libmpich.so.12), so the handle values below are
/// constants, taken from /usr/include/x86_64-linux-gnu/mpich/mpi.h (MPICH 4.0.2). Open MPI's handles are pointers and
/// do not fit this binding.
/// </summary>
internal static unsafe partial class MpiNative
{
    private const string Library = "mpich";

    // mpi.h: #define MPI_COMM_WORLD ((MPI_Comm)0x44000000)
    public const int CommWorld = 0x44000000;
    // mpi.h: #define MPI_FLOAT ((MPI_Datatype)0x4c00040a)
    public const int Float = 0x4c00040a;
    // mpi.h: #define MPI_SUM (MPI_Op)(0x58000003)
    public const int Sum = 0x58000003;
    // mpi.h: #define MPI_ERRORS_RETURN ((MPI_Errhandler)0x54000001)
    public const int ErrorsReturn = 0x54000001;
    // mpi.h: #define MPI_IN_PLACE (void *) -1
    public static readonly nint InPlace = -1;
    // mpi.h: #define MPI_SUCCESS 0, MPI_MAX_ERROR_STRING 512
    public const int Success = 0;
    private const int MaxErrorString = 512;

    /// <summary>The library names tried, in order: MPICH's ABI name, Debian's, then the development symlink.</summary>
    internal static readonly string[] LibraryNames = ["libmpi.so.12", "libmpich.so.12", "libmpi.so"];

    static MpiNative() => NativeLibrary.SetDllImportResolver(typeof(MpiNative).Assembly, Resolve);

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library) return 0;
        foreach (var candidate in LibraryNames)
            if (NativeLibrary.TryLoad(candidate, out var handle)) return handle;
        throw new DllNotFoundException(
            $"MPI was not found: none of {string.Join(", ", LibraryNames)} loads. Install MPICH (Debian/Ubuntu: apt-get install mpich) on every host, " +
            "or put its lib folder on LD_LIBRARY_PATH.");
    }

    [LibraryImport(Library, EntryPoint = "MPI_Init")] public static partial int Init(nint argc, nint argv);
    [LibraryImport(Library, EntryPoint = "MPI_Initialized")] public static partial int Initialized(int* flag);
    [LibraryImport(Library, EntryPoint = "MPI_Finalized")] public static partial int Finalized(int* flag);
    [LibraryImport(Library, EntryPoint = "MPI_Finalize")] public static partial int Finalize();
    [LibraryImport(Library, EntryPoint = "MPI_Comm_set_errhandler")] public static partial int CommSetErrhandler(int comm, int handler);
    [LibraryImport(Library, EntryPoint = "MPI_Comm_rank")] public static partial int CommRank(int comm, int* rank);
    [LibraryImport(Library, EntryPoint = "MPI_Comm_size")] public static partial int CommSize(int comm, int* size);
    [LibraryImport(Library, EntryPoint = "MPI_Allreduce")] public static partial int Allreduce(nint send, nint receive, int count, int type, int op, int comm);
    [LibraryImport(Library, EntryPoint = "MPI_Allgather")] public static partial int Allgather(nint send, int sendCount, int sendType, nint receive, int receiveCount, int receiveType, int comm);
    [LibraryImport(Library, EntryPoint = "MPI_Bcast")] public static partial int Bcast(nint buffer, int count, int type, int root, int comm);
    [LibraryImport(Library, EntryPoint = "MPI_Barrier")] public static partial int Barrier(int comm);
    [LibraryImport(Library, EntryPoint = "MPI_Error_string")] private static partial int ErrorString(int code, byte* text, int* length);

    /// <summary>Throws <see cref="MpiException"/> naming <paramref name="call"/> and MPI's own message when <paramref name="code"/> is not MPI_SUCCESS.</summary>
    public static void Check(int code, string call)
    {
        if (code == Success) return;
        var text = stackalloc byte[MaxErrorString];
        int length;
        var message = ErrorString(code, text, &length) == Success ? System.Text.Encoding.ASCII.GetString(text, length) : "no message";
        throw new MpiException($"{call} failed with MPI error {code}: {message}");
    }
}

/// <summary>An MPI call returned an error (the message names the call and MPI's description).</summary>
public sealed class MpiException(string message) : Exception(message);
