"""Keras Tuner's view of a task: the search space declared from ``hp``, built and fitted per trial."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import keras_tuner as kt

from automl.models import backbones, precision
from automl.search import callbacks, pruners
from automl.search.budget import Budget
from automl.settings import choices
from automl.tasks.base import SearchSpace, SplitData, Task


class TaskHyperModel(kt.HyperModel):
    """Keras Tuner's view of a task: build from ``hp``, fit on the task's splits.

    ``data`` maps each image size a trial may train at (the run's, and the screening
    size under multi-fidelity) to its (train, validation) splits; a trial's size is its
    ``image_size`` hyperparameter. ``prune``: the median stopping rule reads finished
    trials from ``records_path``.
    """

    def __init__(self, task: Task, space: SearchSpace, data: dict[int, tuple[SplitData, SplitData]], *,
                 screen_size: int | None = None, prune: str = "none", records_path: Path | None = None,
                 budget: Budget | None = None):
        super().__init__(name=task.name)
        self.task, self.space, self.data = task, space, data
        self.screen_size, self.prune, self.records_path = screen_size, prune, records_path
        self.budget = budget or Budget()
        # True while Keras Tuner builds models only to discover the search space.
        self.discovering = False
        self.pruning: callbacks.Pruning | None = None
        self.meter: callbacks.ComputeMeter | None = None
        # The seed of the trial being built and trained (set by the tuner per trial,
        # :func:`automl.records.trials.trial_seed`); the run's seed outside a trial.
        self.trial_seed = space.seed

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        for name, value in self.space.fixed.items():
            hp.Fixed(name, value)
        # New trials start at the screening size; full-size retraining overrides it.
        hp.Fixed("image_size", self.screen_size or self.space.image_size)
        if self.screen_size and "stem_stride" not in self.space.fixed:
            # The architecture is the full-size one at every size: a screened model is the
            # model that would be retrained, on a quarter of the pixels (and of the compute).
            hp.Fixed("stem_stride", backbones.stem_stride(self.space.image_size))
        conv = set(self.space.families) - set(backbones.APPLICATIONS)
        if self.screen_size and conv and "blocks" not in self.space.fixed:
            # Declared first, this range holds at every size: only configurations that can be
            # screened are drawn (6 blocks after a stride-2 stem cannot be built at 64 px;
            # every such trial used to fail).
            most = backbones.max_blocks(self.screen_size, hp.values["stem_stride"])
            hp.Int("blocks", backbones.MIN_BLOCKS, most, default=min(4, most))

    def trial_size(self, hp) -> int:
        return int(hp.values.get("image_size") or self.space.image_size)

    def build(self, hp):
        space = dataclasses.replace(self.space, image_size=self.trial_size(hp), seed=self.trial_seed)
        # The trial's weights start from its own seed, whatever trials came before it.
        keras.utils.set_random_seed(self.trial_seed)
        # Keras Tuner clears the Keras session before every build, and with it the global
        # dtype policy: set it again for this trial's model.
        precision.use_policy(self.space.dtype_policy)
        try:
            model = self.task.build(hp, space)
        except ValueError:
            if not self.discovering:
                raise  # a real trial: Keras Tuner records it as failed
            # The default configuration may be unbuildable for this image size;
            # that must fail a trial, not the whole search.
            return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        if self.space.jit_compile != "auto":
            model.jit_compile = self.space.jit_compile
        return model

    def fit(self, hp, model, *args, **kwargs):
        # One line per epoch is the progress a user watches, whatever Keras Tuner's verbosity.
        kwargs["verbose"] = 2
        size = self.trial_size(hp)
        train, val = self.data[size]
        self.pruning = None
        if self.prune == "median" and self.records_path is not None:
            promoted = bool(self.screen_size) and size != self.screen_size
            judge = (dict(warmup_trials=choices.PRUNE_WARMUP_FULL_TRIALS,
                          min_epoch=max(choices.PRUNE_MIN_EPOCH, int(kwargs.get("epochs") or 0) // 2))
                     if promoted else {})
            self.pruning = callbacks.Pruning([pruners.MedianStopping(
                self.records_path, self.space.objective, image_size=size, **judge), pruners.ChanceStopping()])
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), self.pruning]
        # First: every other callback reads the budget after this epoch's compute is charged.
        scored = len(val.images) + (len(val.selection.images) if val.selection is not None
                                    and val.selection.shifted else 0)
        self.meter = callbacks.ComputeMeter(self.budget, hp=hp, scored=scored, image_size=size)
        kwargs["callbacks"] = [self.meter, *kwargs.get("callbacks", [])]
        space = dataclasses.replace(self.space, image_size=size, seed=self.trial_seed)
        return self.task.fit(hp, model, train, val, space, **kwargs)
