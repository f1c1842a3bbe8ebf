namespace MLNet.Contrastive.Data;

/// <summary>An input image or dataset file that cannot be used; the message names the file and what is wrong.</summary>
public sealed class ImageDataException : IOException
{
    /// <summary>An error about the file or image at <paramref name="path"/>: "<paramref name="path"/>: <paramref name="problem"/>".</summary>
    public ImageDataException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    /// <summary>The offending file or folder.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }
}
