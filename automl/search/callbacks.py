"""The Keras callbacks of every trial: time limits, pruning, early stopping, TensorBoard, interrupts."""

from __future__ import annotations

from pathlib import Path

import keras

from automl.search import pruners
from automl.search.budget import Budget, now
from automl.search.interrupts import InterruptCheck
from automl.settings import choices
from automl.settings.run_config import SearchConfig


class TrialTimeLimit(keras.callbacks.Callback):
    """Stop a trial's training after ``minutes`` of wall time, or once the ``budget``'s end
    plus its allowed overrun has passed, whichever is first; the best epoch is kept.

    One slow configuration must not eat the whole search budget on a CPU, and the
    trial running when the search budget ends must not overrun it by much.

    With a refit to follow (the budget's ``reserve``), a trial that starts before the time
    kept for the refit stops at the last epoch end before that time (when another epoch as
    long as the last would cross it), so the refit gets the time kept for it; a trial that
    starts inside it is the final full-size retraining, limited by the overrun. Stopping
    only once that time had begun would cost the refit up to an epoch, enough to skip it.
    """

    def __init__(self, minutes: float | None, budget: Budget | None = None):
        super().__init__()
        self.minutes, self.budget = minutes, budget

    def on_train_begin(self, logs=None):
        self.started = self.epoch_started = now()
        self.refit_from = None
        end = self.budget.end() if self.budget else None
        if end and self.budget.reserve:
            reserved = self.budget.reserved_seconds()
            if reserved > 0 and self.started < end - reserved:
                self.refit_from = end - reserved

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = now()

    def on_epoch_end(self, epoch, logs=None):
        current = now()
        last_epoch = current - self.epoch_started
        stop_at = self.budget.stop_at() if self.budget else None
        if self.minutes and current - self.started > 60 * self.minutes:
            print(f"trial stopped: over its {self.minutes:g}-minute limit")
            self.model.stop_training = True
        elif stop_at and current > stop_at:
            print("trial stopped: the search's time budget is spent")
            self.model.stop_training = True
        elif self.refit_from and current + last_epoch > self.refit_from:
            print("trial stopped: the time kept for the refit begins before another epoch would end")
            self.model.stop_training = True


class Pruning(keras.callbacks.Callback):
    """Ask each of ``rules`` (pure decisions, :mod:`automl.search.pruners`) at every epoch end
    whether to stop the trial, and stop it if one says so.

    The decision stays on this callback (``reason``, None while not pruned), where the
    trial's record reads it.
    """

    def __init__(self, rules: list):
        super().__init__()
        self.rules = list(rules)
        self.epoch_logs: list[dict] = []
        self.reason: pruners.PruneReason | None = None

    def on_train_begin(self, logs=None):
        self.epoch_logs, self.reason = [], None

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs.append(dict(logs or {}))
        # Keras numbers epochs from initial_epoch on: epoch + 1 counts from the start of training.
        history = pruners.TrialHistory(tuple(self.epoch_logs), epoch + 1, (self.params or {}).get("epochs"))
        for rule in self.rules:
            reason = rule.should_prune(history)
            if reason is not None:
                print(reason.message, flush=True)
                self.reason = reason
                self.model.stop_training = True


def trial_callbacks(config: SearchConfig, run_dir: Path, objective: str, budget: Budget) -> list:
    """Early stopping on the objective, NaN guard, time limits (``budget``: the search's,
    see :class:`TrialTimeLimit`), TensorBoard and the interrupt check for every trial."""
    return [
        keras.callbacks.EarlyStopping(monitor=objective, mode=choices.objective_direction(objective),
                                      patience=config.patience, restore_best_weights=True),
        keras.callbacks.TerminateOnNaN(),
        TrialTimeLimit(config.trial_minutes, budget),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tb"), write_graph=False, profile_batch=0),
        InterruptCheck(),
    ]
