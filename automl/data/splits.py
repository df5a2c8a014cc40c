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


#: The share of patients a manifest without a ``split`` column gives the test split.
TEST_FRACTION = 0.2
#: The seed of that test split: one test split for every search seed, as a folder has.
TEST_SEED = 0


def make_splits(index: Index, *, val_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Split official train + val into train/validation by patient.

    Images of one patient never straddle train and validation: the data set
    has several images per patient (some byte-identical), so an image-level
    split leaks and flatters validation. Stratifying by subtype keeps the
    bacterial/viral/normal shares of the pool in both parts.

    A manifest (``index.manifest``) with ``val`` rows is split as it says (a split file of
    ``automl data split`` gives back that split exactly); one with ``train`` and ``test`` only
    has its validation carved from ``train`` as a folder's; one without splits has its test
    split carved first (:data:`TEST_FRACTION` of patients, always with :data:`TEST_SEED`).

    Args:
        index: the scanned data folder or read manifest.
        val_fraction: share of pooled images for validation, in (0, 0.5].
        seed: same seed, same split.
    """
    if not 0 < val_fraction <= 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5], got {val_fraction}")
    table, manifest = index.table, getattr(index, "manifest", None)
    if manifest is not None and (table.split == "val").any():
        return Splits(*(table[table.split == name].reset_index(drop=True)
                        for name in ("train", "val", "test")))
    if manifest is not None and (table.split == "").all():
        table = table.assign(split=np.where(_carve(table, TEST_FRACTION, TEST_SEED), "test", "train"))
    pool = table[table.split.isin(["train", "val"])].reset_index(drop=True)
    test = table[table.split == "test"].reset_index(drop=True)
    if len(pool) < 4:
        raise ValueError(f"{manifest or index.root}: only {len(pool)} training images; need at least 4")
    is_val = _carve(pool, val_fraction, seed)
    return Splits(
        train=pool[~is_val].reset_index(drop=True),
        val=pool[is_val].reset_index(drop=True),
        test=test,
    )


def _carve(pool: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Which rows of ``pool`` are held out: the patient-grouped, subtype-stratified fold whose
    size is nearest ``fraction`` of the rows."""
    n_folds = max(2, round(1 / fraction))
    # Keep the fold count feasible for tiny (synthetic) sets.
    n_folds = min(n_folds, pool.patient.nunique())
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    # Choose the fold whose size is nearest the requested share, so that a
    # fraction that is not 1/k still lands close.
    best = None
    for _, val_idx in folds.split(pool, pool.subtype, groups=pool.patient):
        gap = abs(len(val_idx) / len(pool) - fraction)
        if best is None or gap < best[0]:
            best = (gap, val_idx)
    is_val = np.zeros(len(pool), dtype=bool)
    is_val[best[1]] = True
    return is_val
