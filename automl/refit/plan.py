"""What the refit retrains: its candidate configurations, their epochs, what they cost, what fits
the time left."""

from __future__ import annotations

from collections.abc import Callable

from automl import records
from automl.refit import tta, weight_average

# The refit retrains configurations whose search validation is within this of the best's:
# it may refit a lesser one when the best does not fit the time left (:func:`plan`), and a
# configuration well below the best would give out-of-fold choices nothing but its own weak
# scores.
CANDIDATE_MARGIN = 0.02

# cost(trials, k): what refitting trials on k folds costs (seconds, or compute units)
Cost = Callable[[list[dict], int], float]


def candidates(top: list[dict], objective: str) -> list[dict]:
    """The configurations a refit may retrain: of ``top`` (the search's best distinct trials,
    best first, as many as its ensemble would take) those within :data:`CANDIDATE_MARGIN`
    of the best on the validation ``objective``."""
    return [t for t in top if abs(t["metrics"][objective] - top[0]["metrics"][objective])
            <= CANDIDATE_MARGIN]


def refit_epochs(trial: dict, objective: str, direction: str) -> int:
    """Epochs from scratch to the trial's best epoch (Hyperband continues trials from an
    earlier one's checkpoint: its epochs before ``tuner/initial_epoch`` count too)."""
    values = trial.get("history", {}).get(objective) or []
    if not values:
        # No per-epoch record (never the case for a trial the search finished): the epochs it
        # was given, rather than a silent single epoch.
        epochs = trial.get("hparams", {}).get("tuner/epochs")
        if not epochs:
            raise ValueError(f"trial {trial.get('trial_id')}: no {objective} history and no "
                             "tuner/epochs in trials.jsonl: cannot tell how many epochs to refit")
        return int(epochs)
    best = records.best_epoch(values, direction)
    best = len(values) - 1 if best is None else best
    return int(trial.get("hparams", {}).get("tuner/initial_epoch", 0) or 0) + max(best, 0) + 1


def estimate_cost(trials: list[dict], k: int, *, objective: str, direction: str,
                  pool_size: int, train_size: int, scored_copies: int = 1, key: str = "seconds") -> float:
    """What refitting ``trials`` on ``k`` folds costs, from the trials' own cost per epoch (their
    records' ``key``: ``seconds``, or ``compute`` units under a compute budget):
    training (a fold trains on (k-1)/k of the pool, the search trained on ``train_size``
    images), the batch-norm pass over each fold's training images after its weights are
    averaged, and scoring (every pool image in ``scored_copies`` versions, once plain and
    once through test-time augmentation; a forward pass taken as a third of a training step).

    It charges the search epoch's validation passes to training, which errs high when they
    are a large share of the epoch; leaving them out errs low, and a low estimate overruns
    the user's budget (tests/test_refit.py holds it against real refits)."""
    total = 0.0
    for trial in trials:
        epochs_run = max(len(trial.get("history", {}).get(objective) or []), 1)
        per_epoch = float(trial.get(key) or 0.0) / epochs_run
        scale = (k - 1) / k * pool_size / max(train_size, 1)
        epochs = refit_epochs(trial, objective, direction)
        total += k * epochs * per_epoch * scale
        forward = per_epoch / max(3 * train_size, 1)
        total += forward * pool_size * scored_copies * (1 + tta.VARIANTS)
        if weight_average.averaged_epochs(epochs) > 1:  # each fold's batch-norm pass
            total += forward * (k - 1) * pool_size
    return total


def plan(trials: list[dict], max_folds: int, cost: Cost,
         left: float | None) -> tuple[list[dict], int]:
    """How many folds and configurations to refit: the most folds (up to ``max_folds``), then
    the most of ``trials`` (best first), whose ``cost(trials, k)`` fits what is ``left``
    (no limit when None). When not even 2 folds of the best fit, the same for the next best,
    and so on: the time kept for the refit is estimated while the search runs, and a trial
    that becomes best later can cost more than what was kept. Nothing (``[], 0``) when none
    fits: out-of-fold scores need two folds, and the time budget is the user's limit."""
    if left is None:
        return trials, max_folds
    for start in range(len(trials)):
        for k in range(max_folds, 1, -1):
            for n in range(len(trials) - start, 0, -1):
                if cost(trials[start:start + n], k) <= left:
                    return trials[start:start + n], k
    return [], 0
