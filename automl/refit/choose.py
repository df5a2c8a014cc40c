"""The refit's out-of-fold choices: how many configurations to average, test-time augmentation,
calibration."""

from __future__ import annotations

import time

import numpy as np

from automl.refit import calibration, tta
from automl.refit.fold_models import RefitResult
from automl.tasks.base import Task


def tta_oof(task: Task, result: RefitResult, trial_id: str) -> np.ndarray:
    """Out-of-fold scores of one configuration with test-time augmentation: each fold's
    held-out images through :func:`automl.refit.tta.with_tta` of that fold's model."""
    trial = next(t for t in result.trials if t["trial_id"] == trial_id)
    out = np.zeros_like(result.oof[trial_id])
    for fold, model in enumerate(result.models[trial_id]):
        rows = result.held_rows(fold)
        out[rows] = task.scores(tta.with_tta(model), result.selection.images[rows], hparams=trial["hparams"])
    return out


def calibrated_oof(result: RefitResult, scores: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """One configuration's out-of-fold ``scores`` with each fold's part calibrated on itself
    (:func:`automl.refit.calibration.fit`), and the fold calibrations (fold order)."""
    out, fitted = np.zeros_like(scores), []
    for fold in range(int(result.folds.max()) + 1):
        rows = result.held_rows(fold)
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
    return _members(result, chosen, fitted, record["tta"]), scores, record


def _members(result: RefitResult, chosen: list[str], fitted: dict[str, list[dict]],
             with_tta: bool) -> list[tuple[dict, object]]:
    """Every fold model of the ``chosen`` configurations, calibrated (``fitted[trial][fold]``),
    with test-time augmentation inside when chosen."""
    trials = {t["trial_id"]: t for t in result.trials}
    members = []
    for i in chosen:
        for f, m in enumerate(result.models[i]):
            inner = tta.with_tta(m, name=f"trial_{i}_fold_{f}_tta") if with_tta else m
            model = calibration.calibrated(inner, fitted[i][f], name=f"trial_{i}_fold_{f}")
            members.append((trials[i], model))
    return members
