using MLNet.Contrastive.Methods;

namespace MLNet.Contrastive.Training;

/// <summary>
/// Hears the end of every full epoch of a run (<see cref="PretrainOptions.EpochCallbacks"/>): validation, early stopping,
/// a user's own logging. It runs outside the time budget, like the monitors, before the epoch's checkpoint is written.
/// </summary>
public interface IEpochCallback
{
    /// <summary>
    /// Called with the method (in training mode; the run puts it back in training mode afterwards) and the epoch
    /// just finished (1-based); returns true to stop training after this epoch.
    /// </summary>
    bool AfterEpoch(PretrainingMethod method, int epoch);
}
