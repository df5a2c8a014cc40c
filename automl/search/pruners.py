"""Pruning: the median stopping rule, and a stop for trials whose output separates nothing."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from automl import records
from automl.records.trials import trial_image_size
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


class MedianStopping(keras.callbacks.Callback):
    """Stop training when the trial's best objective so far is worse than the median of the
    finished trials (same image size) at the same epoch.

    The reference is read from ``trials.jsonl`` at every epoch, so trials that other
    workers finish meanwhile count too. It starts once ``warmup_trials`` finished trials
    reached the epoch, and never before epoch ``min_epoch``. What it decided is left on
    ``model.pruned`` for the trial's record.
    """

    def __init__(self, records_path: Path, objective: str, *, image_size: int,
                 warmup_trials: int = choices.PRUNE_WARMUP_TRIALS, min_epoch: int = choices.PRUNE_MIN_EPOCH):
        super().__init__()
        self.records_path, self.objective, self.image_size = Path(records_path), objective, image_size
        self.direction = choices.objective_direction(objective)
        self.warmup_trials, self.min_epoch = warmup_trials, min_epoch

    def on_train_begin(self, logs=None):
        self.best = None

    def finished(self) -> list[dict]:
        return [r for r in records.read_jsonl(self.records_path)
                if r.get("status") == "COMPLETED" and trial_image_size(r, self.image_size) == self.image_size]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is None or value != value:
            return
        better = max if self.direction == "max" else min
        self.best = value if self.best is None else better(self.best, value)
        trained = epoch + 1  # Keras numbers epochs from initial_epoch on
        if trained < self.min_epoch or trained >= (self.params or {}).get("epochs", trained + 1):
            return  # too early to judge, or the last epoch anyway: nothing to save
        reference = median_at(self.finished(), self.objective, trained, self.direction)
        if reference is None or reference[1] < self.warmup_trials:
            return
        median, count = reference
        worse = self.best < median if self.direction == "max" else self.best > median
        if worse:
            print(f"trial pruned at epoch {trained}: {self.objective} {self.best:.4f} is worse than the "
                  f"median {median:.4f} of {count} finished trials", flush=True)
            self.model.pruned = {"rule": "median", "epoch": trained, "value": float(value),
                                 "best": float(self.best), "median": median, "reference_trials": count}
            self.model.stop_training = True


class ChanceStopping(keras.callbacks.Callback):
    """Stop training when Keras's validation AUC has been exactly 0.5 for ``epochs``
    epochs in a row: every validation image gets the same score (to the metric's
    thresholds' resolution), a model that has learnt nothing and, in the searches
    recorded so far, never started to.

    The median rule cannot stop such a trial while it is warming up, nor a full-size
    trial before half its epochs; this one can, from the ``epochs``-th epoch on. What it
    decided is left on ``model.pruned`` (with ``"rule": "chance"``).
    """

    def __init__(self, epochs: int = choices.CHANCE_EPOCHS, metric: str = "val_auc"):
        super().__init__()
        self.epochs, self.metric = epochs, metric

    def on_train_begin(self, logs=None):
        self.run = 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.metric)
        if value is None:
            return
        self.run = self.run + 1 if abs(float(value) - 0.5) < 1e-9 else 0
        trained = epoch + 1
        if self.run < self.epochs or trained >= (self.params or {}).get("epochs", trained + 1):
            return  # not dead yet, or the last epoch anyway: nothing to save
        print(f"trial pruned at epoch {trained}: {self.metric} has been 0.5 (the same score for every "
              f"validation image) for {self.run} epochs", flush=True)
        self.model.pruned = {"epoch": trained, "value": float(value), "rule": "chance"}
        self.model.stop_training = True
