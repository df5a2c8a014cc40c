"""The refit's folds: the training pool split by patient, and the validation images a fold never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold


def pool_folds(pool: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of every image of the training pool: grouped by patient (a patient's
    images are all in one fold), stratified by subtype (normal, bacterial, viral).

    A pool read from a split file (``automl data split``) whose ``fold`` column gives every
    image one of the k folds keeps those folds: the file is the split, folds included."""
    k = min(k, pool.patient.nunique())
    if "fold" in pool and pool.fold.notna().all() and set(pool.fold) == set(range(k)):
        return pool.fold.to_numpy(np.int64)
    folds = np.full(len(pool), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(pool, pool.subtype, groups=pool.patient)):
        folds[held] = fold
    return folds


def unseen_validation(parts: dict, k: int, seed: int) -> tuple[int, np.ndarray]:
    """The fold whose model encodes a refit run's embeddings, and which of ``parts["val"]``'s
    images it never trained on (those it held out: the refit pools train, then validation,
    as :func:`automl.refit.run.run_refit` does).

    It is the first fold that holds validation images out. With K = 5 and a validation
    share of 1/5 the refit's folds can reproduce the search's own split (the same grouped,
    stratified splitter, the same seed): then a single fold holds every validation image,
    and fold 0 would have trained on all of them.
    """
    pool = pd.concat([parts["train"], parts["val"]], ignore_index=True)
    folds = pool_folds(pool, k, seed)[len(parts["train"]):]
    fold = int(folds.min()) if len(folds) else 0
    return fold, folds == fold
