namespace MLNet.Contrastive.Training;

/// <summary>Reported after every step.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Step">1-based global step.</param>
/// <param name="StepsPerEpoch">Steps in one epoch.</param>
/// <param name="Progress">Fraction of the budget (epochs or minutes) spent, 0–1.</param>
/// <param name="Loss">This step's loss.</param>
/// <param name="LearningRate">This step's learning rate.</param>
/// <param name="ViewsPerSecond">Augmented views processed per second over the run so far.</param>
/// <param name="Elapsed">Training time so far (including earlier runs that this one resumed).</param>
/// <param name="Remaining">Estimated time left.</param>
public readonly record struct PretrainProgress(int Epoch, int Step, int StepsPerEpoch, double Progress, double Loss,
    double LearningRate, double ViewsPerSecond, TimeSpan Elapsed, TimeSpan Remaining);
