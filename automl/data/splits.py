"""Patient-grouped, subtype-stratified train/validation split carved from official train."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from automl.data.index import Index


@dataclass
class Splits:
    """The three tables a task trains, selects and finally scores on.

    ``test`` is the official test split and is read only by the final
    evaluation; ``val`` is what every choice (trial, epoch, threshold) sees.
    """

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def make_splits(index: Index, *, val_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Split official train + val into train/validation by patient.

    Images of one patient never straddle train and validation: the data set
    has several images per patient (some byte-identical), so an image-level
    split leaks and flatters validation. Stratifying by subtype keeps the
    bacterial/viral/normal shares of the pool in both parts.

    Args:
        index: the scanned data folder.
        val_fraction: share of pooled images for validation, in (0, 0.5].
        seed: same seed, same split.
    """
    if not 0 < val_fraction <= 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5], got {val_fraction}")
    table = index.table
    pool = table[table.split.isin(["train", "val"])].reset_index(drop=True)
    test = table[table.split == "test"].reset_index(drop=True)
    if len(pool) < 4:
        raise ValueError(f"{index.root}: only {len(pool)} training images; need at least 4")
    n_folds = max(2, round(1 / val_fraction))
    # Keep the fold count feasible for tiny (synthetic) sets.
    n_folds = min(n_folds, pool.patient.nunique())
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    # Choose the fold whose size is nearest the requested share, so that a
    # fraction that is not 1/k still lands close.
    best = None
    for _, val_idx in folds.split(pool, pool.subtype, groups=pool.patient):
        gap = abs(len(val_idx) / len(pool) - val_fraction)
        if best is None or gap < best[0]:
            best = (gap, val_idx)
    is_val = np.zeros(len(pool), dtype=bool)
    is_val[best[1]] = True
    return Splits(
        train=pool[~is_val].reset_index(drop=True),
        val=pool[is_val].reset_index(drop=True),
        test=test,
    )
