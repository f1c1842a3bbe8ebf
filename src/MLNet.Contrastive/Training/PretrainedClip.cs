using MLNet.Contrastive.Methods;

namespace MLNet.Contrastive.Training;

/// <summary>
/// A trained CLIP-style run (<see cref="Clip"/>): both towers and the image shape they were trained at, from a
/// checkpoint, the run folder holding it, or a finished run. Zero-shot classification and the tower exports take it.
/// </summary>
public sealed class PretrainedClip
{
    private PretrainedClip(Clip model, string source, (int Channels, int Height, int Width) imageShape)
    {
        Model = model;
        Source = source;
        ImageShape = imageShape;
    }

    /// <summary>The towers, in eval mode, on the CPU.</summary>
    public Clip Model { get; }

    /// <summary>Where the run comes from, for messages.</summary>
    public string Source { get; }

    /// <summary>Channels, height and width of the images the image tower was trained on.</summary>
    public (int Channels, int Height, int Width) ImageShape { get; }

    /// <summary>The CLIP run of a checkpoint, or of the run folder holding <see cref="RunFolder.CheckpointFile"/>.</summary>
    public static PretrainedClip Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = RunFolder.FindCheckpoint(path);
        var (info, method) = Checkpoint.LoadMethod(file);
        if (method is not Clip clip)
            throw new ArgumentException($"{file}: the checkpoint is a '{info.Options.Method.Name}' run; zero-shot classification and the text tower need a 'clip' run.", nameof(path));
        clip.eval();
        return new PretrainedClip(clip, file, (info.Channels, info.Height, info.Width));
    }

    /// <summary>The run of an estimator's options, checked to have a text tower; <paramref name="purpose"/> names what needs it.</summary>
    internal static PretrainedClip WithTextTower(PretrainedClip? model, string purpose) =>
        model is null ? throw new ArgumentNullException("options", $"Options.Model: {purpose} needs a CLIP-style run (PretrainedClip.Load).")
        : model.Model.TextTower is null ? throw new ArgumentException($"{model.Source}: the run pairs images with images; {purpose} needs a run trained on captions.", "options")
        : model;

    /// <summary>The towers of a finished <c>clip</c> run.</summary>
    public static PretrainedClip From(PretrainResult run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (run.Method is not Clip clip)
            throw new ArgumentException($"The run is a '{run.Options.Method.Name}' run; zero-shot classification and the text tower need a 'clip' run.", nameof(run));
        return new PretrainedClip(clip, "the clip run", run.ImageShape);
    }
}
