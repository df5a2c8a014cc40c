"""Cross-validated refit: the best configurations retrained on patient-grouped folds of train + validation."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from automl import records
from automl.data.shift import SelectionSet
from automl.models import precision
from automl.refit import calibration, tta, weight_average
from automl.tasks.base import SearchSpace, SplitData, Task

FOLDS_FILE = "folds.jsonl"  # in the run's refit/ folder: one line per finished fold model
PLAN_FILE = "plan.json"  # the refit's configurations and folds, kept for a resumed run

# A fold model whose quality on its held-out images (AUC, macro-F1) falls more than this
# below its configuration's search validation has failed: the refit trains each fold to a
# fixed epoch count with nothing else to catch a last epoch that went wrong (one fold of
# binary-20261127-174000-94d2 ended at held-out AUC 0.701 beside 0.992; the 22 other fold
# models of the committed binary refits stayed within 0.015 of their configuration's
# validation AUC).
FOLD_TOLERANCE = 0.1
# The refit retrains configurations whose search validation is within this of the best's:
# it may refit a lesser one when the best does not fit the time left (:func:`plan`), and a
# configuration well below the best (0.83 beside 0.99 AUC in binary-20261127-213726-b574)
# would give out-of-fold choices nothing but its own weak scores.
CANDIDATE_MARGIN = 0.02


def pool_folds(pool: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of every image of the training pool: grouped by patient (a patient's
    images are all in one fold), stratified by subtype (normal, bacterial, viral)."""
    k = min(k, pool.patient.nunique())
    folds = np.full(len(pool), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(pool, pool.subtype, groups=pool.patient)):
        folds[held] = fold
    return folds


def unseen_validation(parts: dict, k: int, seed: int) -> tuple[int, np.ndarray]:
    """The fold whose model encodes a refit run's embeddings, and which of ``parts["val"]``'s
    images it never trained on (those it held out: the refit pools train, then validation,
    as :func:`automl.search.orchestrator.run_refit` does).

    It is the first fold that holds validation images out. With K = 5 and a validation
    share of 1/5 the refit's folds can reproduce the search's own split (the same grouped,
    stratified splitter, the same seed): then a single fold holds every validation image,
    and fold 0 would have trained on all of them.
    """
    pool = pd.concat([parts["train"], parts["val"]], ignore_index=True)
    folds = pool_folds(pool, k, seed)[len(parts["train"]):]
    fold = int(folds.min()) if len(folds) else 0
    return fold, folds == fold


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


def estimate_seconds(trials: list[dict], k: int, *, objective: str, direction: str,
                     pool_size: int, train_size: int, scored_copies: int = 1) -> float:
    """What refitting ``trials`` on ``k`` folds costs, from the trials' own seconds per epoch:
    training (a fold trains on (k-1)/k of the pool, the search trained on ``train_size``
    images), the batch-norm pass over each fold's training images after its weights are
    averaged, and scoring (every pool image in ``scored_copies`` versions, once plain and
    once through test-time augmentation; a forward pass taken as a third of a training step).

    It charges the search epoch's validation passes to training, which errs high when they
    are a large share of the epoch. Measured on three real refits (2 CPU cores): 22% and 7%
    high, and 2% low; an estimate that left them out (tried in session 11) was 19% low on
    the third, and a low estimate overruns the user's budget."""
    total = 0.0
    for trial in trials:
        epochs_run = max(len(trial.get("history", {}).get(objective) or []), 1)
        per_epoch = float(trial.get("seconds") or 0.0) / epochs_run
        scale = (k - 1) / k * pool_size / max(train_size, 1)
        epochs = refit_epochs(trial, objective, direction)
        total += k * epochs * per_epoch * scale
        forward = per_epoch / max(3 * train_size, 1)
        total += forward * pool_size * scored_copies * (1 + tta.VARIANTS)
        if weight_average.averaged_epochs(epochs) > 1:  # each fold's batch-norm pass
            total += forward * (k - 1) * pool_size
    return total


def plan(trials: list[dict], max_folds: int, cost, seconds_left: float | None) -> tuple[list[dict], int]:
    """How many folds and configurations to refit: the most folds (up to ``max_folds``), then
    the most of ``trials`` (best first), whose ``cost(trials, k)`` fits ``seconds_left``
    (no limit when None). When not even 2 folds of the best fit, the same for the next best,
    and so on: the time kept for the refit is estimated while the search runs, and a trial
    that becomes best later can cost more than what was kept (both seeds of
    binary-study-5eb065e3 skipped their refit so). Nothing (``[], 0``) when none fits: out-of-fold
    scores need two folds, and the time budget is the user's limit."""
    if seconds_left is None:
        return trials, max_folds
    for start in range(len(trials)):
        for k in range(max_folds, 1, -1):
            for n in range(len(trials) - start, 0, -1):
                if cost(trials[start:start + n], k) <= seconds_left:
                    return trials[start:start + n], k
    return [], 0


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
    k = int(folds.max()) + 1
    labels = task.labels(pool)
    selection = SelectionSet.build(images, labels, shifted=shifted, seed=seed)
    copies = len(selection.images) // max(len(images), 1)
    result = RefitResult(trials=trials, pool=pool, folds=folds, selection=selection)
    done = {(r["trial_id"], r["fold"]): r for r in records.read_jsonl(store / FOLDS_FILE)} if store else {}
    kept_seconds = 0.0  # what the interrupted run spent on the fold models kept from it
    for trial in trials:
        hp = kt.HyperParameters()
        hp.values = {n: v for n, v in trial["hparams"].items() if not n.startswith("tuner/")}
        epochs = refit_epochs(trial, objective, direction)
        averaged = weight_average.averaged_epochs(epochs)
        oof, models = None, []
        for fold in range(k):
            held = folds == fold
            rows = np.flatnonzero(np.tile(held, copies))
            name = f"trial_{trial['trial_id']}_fold_{fold}"
            record = done.get((trial["trial_id"], fold))
            # Scored in float32, as the search's models are (automl.search.orchestrator): same weights.
            precision.use_policy("float32")
            model = task.build(hp, space)
            if (record and record["epochs"] == epochs and record.get("averaged_epochs", 1) == averaged
                    and record["held_out_images"] == int(held.sum())):
                log(f"refit: trial {trial['trial_id']}, fold {fold + 1}/{k}: kept from the interrupted run")
                model.load_weights(store / f"{name}.weights.h5")
                scores = np.load(store / f"{name}.npz")["scores"]
                kept_seconds += float(record.get("seconds") or 0.0)
            else:
                fold_started = time.time()
                keras.utils.set_random_seed(seed + fold)
                precision.use_policy(space.dtype_policy)
                trained = task.build(hp, space)
                log(f"refit: trial {trial['trial_id']}, fold {fold + 1}/{k}: {int((~held).sum())} images, "
                    f"{epochs} epochs, the weights of the last {averaged} averaged")
                # The fold model trains a fixed number of epochs with nothing held out to pick
                # one: its last epoch's output scale swings (held-out accuracy 0.29 to 0.93
                # between consecutive epochs in binary-study-123c4655), and averaging the
                # weights of its last epochs steadies it.
                history = task.fit(hp, trained, SplitData(pool[~held].reset_index(drop=True), images[~held]),
                                   SplitData(pool[held].reset_index(drop=True), images[held]), space,
                                   epochs=epochs, callbacks=[weight_average.WeightAverage(epochs, averaged)],
                                   verbose=2)
                model.set_weights(trained.get_weights())
                if averaged > 1:
                    weight_average.recompute_batch_norm(model, images[~held])
                scores = task.scores(model, selection.images[rows], hparams=trial["hparams"])
                held_clean = scores[:int(held.sum())]
                record = {
                    "trial_id": trial["trial_id"], "fold": fold, "epochs": epochs,
                    "averaged_epochs": averaged,
                    "train_images": int((~held).sum()), "held_out_images": int(held.sum()),
                    "held_out_patients": int(pool[held].patient.nunique()),
                    "quality": float(task.validation_quality(labels[held], held_clean)),
                    "seconds": round(time.time() - fold_started, 2),
                    "history": {n: [float(v) for v in vals] for n, vals in history.history.items()}}
                if store:
                    # Weights and scores first, the record last: a record names a whole fold.
                    store.mkdir(parents=True, exist_ok=True)
                    model.save_weights(store / f"{name}.weights.h5")
                    np.savez(store / f"{name}.npz", scores=scores)
                    records.append_jsonl(store / FOLDS_FILE, record)
            if oof is None:
                oof = np.zeros((len(selection.images), *scores.shape[1:]), np.float32)
            oof[rows] = scores
            result.fold_records.append(record)
            models.append(model)
        result.models[trial["trial_id"]], result.oof[trial["trial_id"]] = models, oof
    precision.use_policy("float32")
    result.seconds = time.time() - started + kept_seconds
    return result


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


def tta_oof(task: Task, result: RefitResult, trial_id: str) -> np.ndarray:
    """Out-of-fold scores of one configuration with test-time augmentation: each fold's
    held-out images through :func:`automl.refit.tta.with_tta` of that fold's model."""
    copies = len(result.selection.images) // max(len(result.folds), 1)
    trial = next(t for t in result.trials if t["trial_id"] == trial_id)
    out = np.zeros_like(result.oof[trial_id])
    for fold, model in enumerate(result.models[trial_id]):
        rows = np.flatnonzero(np.tile(result.folds == fold, copies))
        out[rows] = task.scores(tta.with_tta(model), result.selection.images[rows], hparams=trial["hparams"])
    return out


def calibrated_oof(result: RefitResult, scores: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """One configuration's out-of-fold ``scores`` with each fold's part calibrated on itself
    (:func:`automl.refit.calibration.fit`), and the fold calibrations (fold order)."""
    copies = len(result.selection.images) // max(len(result.folds), 1)
    out, fitted = np.zeros_like(scores), []
    for fold in range(int(result.folds.max()) + 1):
        rows = np.flatnonzero(np.tile(result.folds == fold, copies))
        fitted.append(calibration.fit(result.selection.labels[rows], scores[rows]))
        out[rows] = calibration.apply(scores[rows], fitted[-1])
    return out, fitted


def choose(task: Task, result: RefitResult, *, try_tta: bool = True, log=print):
    """Every decision on the out-of-fold scores (pooled with their re-acquisitions), each
    fold model calibrated on its own held-out images first (:func:`calibrated_oof`): how
    many of the refit configurations to average (best by search first; more only if the
    average is better) and whether test-time augmentation helps. Returns the members
    ``[(trial, model), ...]`` (every calibrated fold model of the chosen configurations,
    with TTA inside if chosen), their pooled out-of-fold scores and the record."""
    y = result.selection.labels
    ids = [t["trial_id"] for t in result.trials]
    plain = {i: calibrated_oof(result, result.oof[i]) for i in ids}
    quality = [float(task.validation_quality(y, np.mean([plain[i][0] for i in ids[:c]], axis=0)))
               for c in range(1, len(ids) + 1)]
    count = 1 + int(np.argmax(quality))  # the first best: fewer models on ties
    chosen = ids[:count]
    scores = np.mean([plain[i][0] for i in chosen], axis=0)
    record = {"folds": int(result.folds.max()) + 1, "trials": ids, "chosen": chosen,
              "oof_quality_by_count": quality, "quality": task.objective.removeprefix("val_"),
              # What the fold models' scores pooled as they came out would have given.
              "oof_quality_uncalibrated": float(task.validation_quality(y, result.oof[ids[0]])),
              "tta": False, "oof_quality_tta": None, "seconds": round(result.seconds, 2),
              **result.plan, "fold_records": result.fold_records}
    fitted = {i: plain[i][1] for i in chosen}
    if try_tta:
        started = time.time()
        with_tta = {i: calibrated_oof(result, tta_oof(task, result, i)) for i in chosen}
        tta_scores = np.mean([with_tta[i][0] for i in chosen], axis=0)
        # The refit's time includes this scoring (its estimate does too).
        record["seconds"] = round(result.seconds + time.time() - started, 2)
        record["oof_quality_tta"] = float(task.validation_quality(y, tta_scores))
        record["tta"] = record["oof_quality_tta"] > quality[count - 1]
        log(f"refit: test-time augmentation {'used' if record['tta'] else 'not used'} "
            f"(out-of-fold {record['quality']} {record['oof_quality_tta']:.4f} with, "
            f"{quality[count - 1]:.4f} without)")
        if record["tta"]:
            scores, fitted = tta_scores, {i: with_tta[i][1] for i in chosen}
    record["calibration"] = fitted
    trials = {t["trial_id"]: t for t in result.trials}
    members = []
    for i in chosen:
        for f, m in enumerate(result.models[i]):
            inner = tta.with_tta(m, name=f"trial_{i}_fold_{f}_tta") if record["tta"] else m
            model = calibration.calibrated(inner, fitted[i][f], name=f"trial_{i}_fold_{f}")
            members.append((trials[i], model))
    return members, scores, record
