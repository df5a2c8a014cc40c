"""The tuners: Keras Tuner's, recording every trial, each handed its oracle at construction."""

from __future__ import annotations

from pathlib import Path

import keras_tuner as kt

from automl.search import oracles
from automl.search import portfolio as warm_start
from automl.search.budget import Budget
from automl.search.hypermodel import TaskHyperModel
from automl.search.recording import RecordingMixin
from automl.settings.run_config import SearchConfig


class RecordingTuner(RecordingMixin, kt.Tuner):
    """Random search, Bayesian optimisation and grid search: the algorithm is all in the oracle."""


class RecordingHyperband(RecordingMixin, kt.Hyperband):
    """Hyperband: its tuner trains each trial for its round's epochs, from the weights of the
    trial it continues; the oracle is built by :func:`automl.search.oracles.build_oracle`."""

    def __init__(self, oracle: kt.Oracle, hypermodel=None, **kwargs):
        # kt.Hyperband's own __init__ only builds a plain oracle: skipped for the one given.
        kt.Tuner.__init__(self, oracle, hypermodel, **kwargs)


def tuner_class(name: str) -> type:
    """The recording tuner class of the algorithm ``name`` (:data:`automl.settings.choices.TUNERS`)."""
    if name not in oracles.ORACLES:
        raise KeyError(name)
    return RecordingHyperband if name == "hyperband" else RecordingTuner


def build_tuner(config: SearchConfig, hypermodel: TaskHyperModel, run_dir: Path, *, objective: str,
                overwrite: bool, budget: Budget):
    """The configured tuner over ``hypermodel``, its state in ``run_dir/tuner``, recording trials;
    ``budget``: the search's wall-clock budget (a resumed run's is what was left of it)."""
    configurations = []
    if oracles.warm_starts(config):
        configurations = [e["values"] for e in warm_start.entries(config.task)]
    oracle = oracles.build_oracle(config, run_dir, objective=objective, budget=budget,
                                  configurations=configurations)
    common = dict(directory=str(run_dir), project_name="tuner", overwrite=overwrite)
    if config.strategy == "mirrored":
        import tensorflow as tf

        # Several GPUs per worker: each trial's model is replicated across them.
        common["distribution_strategy"] = tf.distribute.MirroredStrategy()
    # Keras Tuner builds models while it constructs the tuner, only to discover the search space.
    hypermodel.discovering = True
    tuner = tuner_class(config.tuner)(oracle, hypermodel, **common)
    hypermodel.discovering = False
    tuner.setup_recording(run_dir, run_dir.name, hypermodel.task, objective=objective, budget=budget,
                          portfolio=configurations)
    return tuner


def show_failed_trial_tracebacks(show: bool) -> None:
    """Keras Tuner prints the whole traceback of every failed trial; the record keeps it and
    the console gets one line (``-v`` brings the tracebacks back)."""
    from keras_tuner.src import config as kt_config

    kt_config.DEBUG = show
