"""Pruning: the median stopping rule, and a stop for trials whose output separates nothing.

Each pruner is a pure decision, as Optuna's are: ``should_prune(history)`` reads what the
trial has trained so far and returns why to stop it (a :class:`PruneReason`) or None. One
Keras callback (:class:`automl.search.callbacks.Pruning`) asks them at every epoch end and
stops the training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from automl import records
from automl.records import trials
from automl.settings import choices


def curve_at(record: dict, objective: str, epoch: int, direction: str) -> float | None:
    """The best ``objective`` a recorded trial reached by its ``epoch``-th epoch (1-based,
    counted from the start of training, so a Hyperband trial continued from epoch 2 starts
    its own history at epoch 3); None if it did not train that far."""
    start = int(record.get("hparams", {}).get("tuner/initial_epoch", 0) or 0)
    history = record.get("history", {}).get(objective) or []
    own = epoch - start
    if own < 1 or own > len(history):
        return None
    values = [v for v in history[:own] if v == v]
    if not values:
        return None
    return max(values) if direction == "max" else min(values)


def median_at(finished: list[dict], objective: str, epoch: int, direction: str) -> tuple[float, int] | None:
    """The median over ``finished`` trials of their best ``objective`` by ``epoch``, and how
    many trials it is taken over; None when none reached that epoch."""
    values = [v for v in (curve_at(r, objective, epoch, direction) for r in finished) if v is not None]
    return (float(np.median(values)), len(values)) if values else None


@dataclass(frozen=True)
class TrialHistory:
    """What a pruner sees of a trial in training.

    Attributes:
        logs: Keras's logs of every epoch of this fit so far, oldest first.
        epoch: the epoch just ended, 1-based and counted from the start of training (a
            Hyperband trial continued from epoch 2 ends its first epoch here at 3).
        last_epoch: the fit's final epoch, counted the same way (None: unknown).
    """

    logs: tuple[dict, ...]
    epoch: int
    last_epoch: int | None = None

    def at_last_epoch(self) -> bool:
        """True at the fit's final epoch: stopping there saves nothing."""
        return self.last_epoch is not None and self.epoch >= self.last_epoch


@dataclass(frozen=True)
class PruneReason:
    """Why a trial was stopped: ``details`` for its record's ``pruned`` field, ``message`` for the console."""

    details: dict
    message: str


class MedianStopping:
    """Prune a trial whose best objective so far is worse than the median of the finished
    trials (same image size) at the same epoch.

    The reference is read from ``trials.jsonl`` at every judgement, so trials that other
    workers finish meanwhile count too. It starts once ``warmup_trials`` finished trials
    reached the epoch, and never before epoch ``min_epoch``.
    """

    def __init__(self, records_path: Path, objective: str, *, image_size: int,
                 warmup_trials: int = choices.PRUNE_WARMUP_TRIALS, min_epoch: int = choices.PRUNE_MIN_EPOCH):
        self.records_path, self.objective, self.image_size = Path(records_path), objective, image_size
        self.direction = choices.objective_direction(objective)
        self.warmup_trials, self.min_epoch = warmup_trials, min_epoch

    def finished(self) -> list[dict]:
        return [r for r in records.read_jsonl(self.records_path) if r.get("status") == trials.COMPLETED
                and trials.trial_image_size(r, self.image_size) == self.image_size]

    def should_prune(self, history: TrialHistory) -> PruneReason | None:
        value = history.logs[-1].get(self.objective) if history.logs else None
        if value is None or value != value:
            return None
        seen = [v for v in (logs.get(self.objective) for logs in history.logs) if v is not None and v == v]
        best = max(seen) if self.direction == "max" else min(seen)
        trained = history.epoch
        if trained < self.min_epoch or history.at_last_epoch():
            return None  # too early to judge, or the last epoch anyway: nothing to save
        reference = median_at(self.finished(), self.objective, trained, self.direction)
        if reference is None or reference[1] < self.warmup_trials:
            return None
        median, count = reference
        worse = best < median if self.direction == "max" else best > median
        if not worse:
            return None
        return PruneReason(
            {"rule": "median", "epoch": trained, "value": float(value), "best": float(best),
             "median": median, "reference_trials": count},
            f"trial pruned at epoch {trained}: {self.objective} {best:.4f} is worse than the "
            f"median {median:.4f} of {count} finished trials")


class ChanceStopping:
    """Prune a trial whose Keras validation AUC has been exactly 0.5 for ``epochs`` epochs
    in a row: every validation image gets the same score (to the metric's thresholds'
    resolution), a model that has learnt nothing and, in the searches recorded so far,
    never started to.

    The median rule cannot stop such a trial while it is warming up, nor a full-size
    trial before half its epochs; this one can, from the ``epochs``-th epoch on. An epoch
    without the metric neither extends nor breaks the run of epochs at chance.
    """

    def __init__(self, epochs: int = choices.CHANCE_EPOCHS, metric: str = "val_auc"):
        self.epochs, self.metric = epochs, metric

    def should_prune(self, history: TrialHistory) -> PruneReason | None:
        value = history.logs[-1].get(self.metric) if history.logs else None
        if value is None:
            return None
        run = 0
        for v in (logs[self.metric] for logs in history.logs if logs.get(self.metric) is not None):
            run = run + 1 if abs(float(v) - 0.5) < 1e-9 else 0
        trained = history.epoch
        if run < self.epochs or history.at_last_epoch():
            return None  # not dead yet, or the last epoch anyway: nothing to save
        return PruneReason(
            {"epoch": trained, "value": float(value), "rule": "chance"},
            f"trial pruned at epoch {trained}: {self.metric} has been 0.5 (the same score for every "
            f"validation image) for {run} epochs")
