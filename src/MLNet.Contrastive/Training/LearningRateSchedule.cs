namespace MLNet.Contrastive.Training;

/// <summary>Linear warm-up to the peak rate, then cosine decay to zero, over training progress p ∈ [0, 1].</summary>
public static class LearningRateSchedule
{
    /// <summary>The learning rate at <paramref name="progress"/> ∈ [0, 1] for a <paramref name="peak"/> rate: a linear warm-up over <paramref name="warmupFraction"/>, then cosine decay to zero.</summary>
    public static double At(double progress, double peak, double warmupFraction)
    {
        progress = Math.Clamp(progress, 0, 1);
        if (progress < warmupFraction) return peak * progress / warmupFraction;
        var decay = (progress - warmupFraction) / (1 - warmupFraction);
        return peak * 0.5 * (1 + Math.Cos(Math.PI * decay));
    }

    /// <summary>
    /// The weight decay at <paramref name="progress"/> (0 to 1): <paramref name="start"/> along a half cosine to
    /// <paramref name="end"/>, as DINO's and iBOT's <c>cosine_scheduler</c> moves it (0.04 to 0.4 there); constant without an end.
    /// </summary>
    public static double WeightDecayAt(double progress, double start, double? end) =>
        end is { } last ? last + (start - last) * 0.5 * (1 + Math.Cos(Math.PI * Math.Clamp(progress, 0, 1))) : start;
}
