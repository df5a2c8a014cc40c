"""The Keras callbacks of every trial: time limits, pruning, early stopping, TensorBoard, interrupts."""

from __future__ import annotations

from pathlib import Path

import keras

from automl.models import cost
from automl.search import pruners
from automl.search.budget import Budget
from automl.search.interrupts import InterruptCheck
from automl.settings import choices
from automl.settings.run_config import SearchConfig


class TrialTimeLimit(keras.callbacks.Callback):
    """Stop a trial's training after ``minutes`` (wall time, or their compute units under a
    compute budget), or once the ``budget``'s end plus its allowed overrun has passed, whichever
    is first; the best epoch is kept.

    One slow configuration must not eat the whole search budget on a CPU, and the
    trial running when the search budget ends must not overrun it by much.

    With a refit to follow (the budget's ``reserve``), a trial that starts before what is kept
    for the refit stops at the last epoch end before it (when another epoch as long as the
    last would cross it), so the refit gets what was kept for it; a trial that starts inside
    it is the final full-size retraining, limited by the overrun. Stopping only once that time
    had begun would cost the refit up to an epoch, enough to skip it.

    Every reading is :meth:`Budget.clock <automl.search.budget.Budget.clock>`: the wall clock,
    or the compute charged by :class:`ComputeMeter` (which must come first in the callbacks).
    """

    def __init__(self, minutes: float | None, budget: Budget | None = None):
        super().__init__()
        self.minutes, self.budget = minutes, budget or Budget()

    def on_train_begin(self, logs=None):
        self.started = self.epoch_started = self.budget.clock()
        self.limit = self.budget.trial_limit(self.minutes)
        self.refit_from = None
        end = self.budget.end()
        if end is not None and self.budget.reserve:
            reserved = self.budget.reserved()
            if reserved > 0 and self.started < end - reserved:
                self.refit_from = end - reserved

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = self.budget.clock()

    def on_epoch_end(self, epoch, logs=None):
        current = self.budget.clock()
        last_epoch = current - self.epoch_started
        stop_at = self.budget.stop_at()
        # Under a compute budget the next epoch costs what this one did: stop before crossing.
        ahead = last_epoch if self.budget.computed else 0.0
        if self.limit and current + ahead - self.started > self.limit:
            print(f"trial stopped: over its {self.minutes:g}-minute limit"
                  + (f" ({self.limit:g} compute units)" if self.budget.computed else ""))
            self.model.stop_training = True
        elif stop_at is not None and current + ahead > stop_at:
            print("trial stopped: the search's budget is spent")
            self.model.stop_training = True
        elif self.refit_from and current + last_epoch > self.refit_from:
            print("trial stopped: what is kept for the refit begins before another epoch would end")
            self.model.stop_training = True


class ComputeMeter(keras.callbacks.Callback):
    """Charge each epoch's compute (:func:`automl.models.cost.epoch_units`) to the ``budget`` at
    its end, before any callback reads the budget, and keep the trial's total (``units``).

    ``hp``: the trial's hyperparameters (its ``batch_size``, declared when it starts training);
    ``scored``: the images scored per epoch (validation and its re-acquisitions);
    ``image_size``: pixels per side. The images trained per epoch are the epoch's steps times
    the batch size: the same for a configuration on every machine.
    """

    def __init__(self, budget: Budget, *, hp, scored: int, image_size: int):
        super().__init__()
        self.budget, self.hp, self.scored, self.image_size = budget, hp, scored, image_size
        self.units = 0.0

    def on_train_begin(self, logs=None):
        self.forward = cost.forward_flops(self.model)
        self.batch_size = int(self.hp.values.get("batch_size") or choices.DEFAULT_BATCH_SIZE)
        self.units = 0.0

    def on_epoch_end(self, epoch, logs=None):
        trained = int((self.params or {}).get("steps") or 0) * self.batch_size
        units = cost.epoch_units(self.forward, trained=trained, scored=self.scored,
                                 pixels=self.image_size ** 2)
        self.units += units
        self.budget.charge(units)


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
