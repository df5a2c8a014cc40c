"""The refit's fold models: each configuration retrained on every fold, its held-out images
scored out of fold."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd

from automl import records
from automl.data.shift import SelectionSet
from automl.models import precision
from automl.refit import weight_average
from automl.refit.folds import pool_folds
from automl.refit.plan import refit_epochs
from automl.tasks.base import SearchSpace, SplitData, Task

FOLDS_FILE = "folds.jsonl"  # in the run's refit/ folder: one line per finished fold model

# A fold model whose quality on its held-out images (AUC, macro-F1) falls more than this
# below its configuration's search validation has failed: the refit trains each fold to a
# fixed epoch count with nothing else to catch a last epoch that went wrong, while sound
# fold models stay well within it of their configuration's validation.
FOLD_TOLERANCE = 0.1


@dataclass
class RefitResult:
    """Every fold model of the refit configurations and their out-of-fold scores.

    ``selection`` is the pool (train + validation) with, under shift validation, its
    simulated re-acquisitions; ``oof[trial_id]`` holds, for each of its images, the score
    of the one fold model that did not train on it.
    """

    trials: list[dict]
    pool: pd.DataFrame
    folds: np.ndarray
    selection: SelectionSet
    models: dict[str, list[keras.Model]] = field(default_factory=dict)
    oof: dict[str, np.ndarray] = field(default_factory=dict)
    fold_records: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    plan: dict = field(default_factory=dict)  # folds asked for, seconds left and estimated

    def held_rows(self, fold: int) -> np.ndarray:
        """The rows of ``selection`` that fold ``fold`` held out: its pool images, then their
        re-acquisitions (the selection set repeats the pool once per version)."""
        copies = len(self.selection.images) // max(len(self.folds), 1)
        return np.flatnonzero(np.tile(self.folds == fold, copies))


@dataclass
class _Fitting:
    """What every fold model of one cross-fit shares."""

    task: Task
    space: SearchSpace
    images: np.ndarray  # the pool's images, pool order
    labels: np.ndarray
    result: RefitResult
    seed: int
    store: Path | None
    done: dict  # (trial_id, fold) -> the record of a fold model an interrupted run finished
    log: Callable
    kept_seconds: float = 0.0  # what the interrupted run spent on the fold models kept from it

    @property
    def k(self) -> int:
        """The number of folds."""
        return int(self.result.folds.max()) + 1


def cross_fit(task: Task, space: SearchSpace, pool: pd.DataFrame, images: np.ndarray, trials: list[dict],
              k: int, *, objective: str, direction: str, shifted: bool, seed: int, store: Path | None = None,
              log=print) -> RefitResult:
    """Retrain each of ``trials``' configurations on ``k`` folds of the pool; score each
    fold's held-out images (and their re-acquisitions) with the model that did not see them.

    With ``store`` (the run's ``refit/`` folder) every finished fold model is kept there with
    its record and out-of-fold scores, and a rerun (``--resume`` after a kill) loads it
    instead of training it again."""
    started = time.time()
    pool = pool.reset_index(drop=True)
    folds = pool_folds(pool, k, seed)
    labels = task.labels(pool)
    selection = SelectionSet.build(images, labels, shifted=shifted, seed=seed)
    result = RefitResult(trials=trials, pool=pool, folds=folds, selection=selection)
    done = {(r["trial_id"], r["fold"]): r for r in records.read_jsonl(store / FOLDS_FILE)} if store else {}
    fit = _Fitting(task, space, images, labels, result, seed, store, done, log)
    for trial in trials:
        _fit_configuration(fit, trial, refit_epochs(trial, objective, direction))
    precision.use_policy("float32")
    result.seconds = time.time() - started + fit.kept_seconds
    return result


def _fit_configuration(fit: _Fitting, trial: dict, epochs: int) -> None:
    """Every fold model of one configuration, into ``fit.result`` with its out-of-fold scores."""
    hp = kt.HyperParameters()
    hp.values = {n: v for n, v in trial["hparams"].items() if not n.startswith("tuner/")}
    oof, models = None, []
    for fold in range(fit.k):
        model, scores, record = _fold_model(fit, trial, hp, fold, epochs)
        if oof is None:
            oof = np.zeros((len(fit.result.selection.images), *scores.shape[1:]), np.float32)
        oof[fit.result.held_rows(fold)] = scores
        fit.result.fold_records.append(record)
        models.append(model)
    fit.result.models[trial["trial_id"]], fit.result.oof[trial["trial_id"]] = models, oof


def _fold_model(fit: _Fitting, trial: dict, hp: kt.HyperParameters, fold: int,
                epochs: int) -> tuple[keras.Model, np.ndarray, dict]:
    """One fold model, its scores on the fold's held-out rows and its record: kept from an
    interrupted run when that one trained it the same way, else trained."""
    held = fit.result.folds == fold
    name = f"trial_{trial['trial_id']}_fold_{fold}"
    record = fit.done.get((trial["trial_id"], fold))
    # Scored in float32, as the search's models are (automl.search.orchestrator): same weights.
    precision.use_policy("float32")
    model = fit.task.build(hp, fit.space)
    if (record and record["epochs"] == epochs
            and record.get("averaged_epochs", 1) == weight_average.averaged_epochs(epochs)
            and record["held_out_images"] == int(held.sum())):
        fit.log(f"refit: trial {trial['trial_id']}, fold {fold + 1}/{fit.k}: kept from the interrupted run")
        model.load_weights(fit.store / f"{name}.weights.h5")
        fit.kept_seconds += float(record.get("seconds") or 0.0)
        return model, np.load(fit.store / f"{name}.npz")["scores"], record
    scores, record = _train_fold(fit, trial, hp, fold, model, epochs)
    if fit.store:
        # Weights and scores first, the record last: a record names a whole fold.
        fit.store.mkdir(parents=True, exist_ok=True)
        model.save_weights(fit.store / f"{name}.weights.h5")
        np.savez(fit.store / f"{name}.npz", scores=scores)
        records.append_jsonl(fit.store / FOLDS_FILE, record)
    return model, scores, record


def _train_fold(fit: _Fitting, trial: dict, hp: kt.HyperParameters, fold: int, model: keras.Model,
                epochs: int) -> tuple[np.ndarray, dict]:
    """Train fold ``fold``'s model into ``model`` (built in float32); its held-out scores and record."""
    pool, images, held = fit.result.pool, fit.images, fit.result.folds == fold
    averaged = weight_average.averaged_epochs(epochs)
    fold_started = time.time()
    keras.utils.set_random_seed(fit.seed + fold)
    precision.use_policy(fit.space.dtype_policy)
    trained = fit.task.build(hp, fit.space)
    fit.log(f"refit: trial {trial['trial_id']}, fold {fold + 1}/{fit.k}: {int((~held).sum())} images, "
            f"{epochs} epochs, the weights of the last {averaged} averaged")
    # The fold model trains a fixed number of epochs with nothing held out to pick one: its
    # last epoch's output scale can swing between consecutive epochs, and averaging the
    # weights of its last epochs steadies it.
    history = fit.task.fit(hp, trained, SplitData(pool[~held].reset_index(drop=True), images[~held]),
                           SplitData(pool[held].reset_index(drop=True), images[held]), fit.space,
                           epochs=epochs, callbacks=[weight_average.WeightAverage(epochs, averaged)],
                           verbose=2)
    model.set_weights(trained.get_weights())
    if averaged > 1:
        weight_average.recompute_batch_norm(model, images[~held])
    scores = fit.task.scores(model, fit.result.selection.images[fit.result.held_rows(fold)],
                             hparams=trial["hparams"])
    held_clean = scores[:int(held.sum())]
    return scores, {
        "trial_id": trial["trial_id"], "fold": fold, "epochs": epochs, "averaged_epochs": averaged,
        "train_images": int((~held).sum()), "held_out_images": int(held.sum()),
        "held_out_patients": int(pool[held].patient.nunique()),
        "quality": float(fit.task.validation_quality(fit.labels[held], held_clean)),
        "seconds": round(time.time() - fold_started, 2),
        "history": {n: [float(v) for v in vals] for n, vals in history.history.items()}}


def failed_folds(task: Task, result: RefitResult, tolerance: float | None = None) -> list[dict]:
    """The fold models whose held-out quality falls more than ``tolerance`` (default
    :data:`FOLD_TOLERANCE`) below their configuration's validation measure in the search
    (``task.objective``, clean images)."""
    tolerance = FOLD_TOLERANCE if tolerance is None else tolerance
    reference = {t["trial_id"]: (t.get("metrics") or {}).get(task.objective) for t in result.trials}
    failed = []
    for record in result.fold_records:
        expected = reference.get(record["trial_id"])
        if expected is not None and record["quality"] < expected - tolerance:
            failed.append({"trial_id": record["trial_id"], "fold": record["fold"],
                           "quality": round(float(record["quality"]), 4),
                           "validation": round(float(expected), 4)})
    return failed


def without(result: RefitResult, trial_ids: set[str]) -> RefitResult:
    """The refit without the configurations ``trial_ids`` (their fold models and scores)."""
    kept = [t for t in result.trials if t["trial_id"] not in trial_ids]
    return dataclasses.replace(
        result, trials=kept, models={t["trial_id"]: result.models[t["trial_id"]] for t in kept},
        oof={t["trial_id"]: result.oof[t["trial_id"]] for t in kept},
        fold_records=[r for r in result.fold_records if r["trial_id"] not in trial_ids])
