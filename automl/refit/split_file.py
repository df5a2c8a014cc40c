"""The split as a file: the exact train / validation / test rows (and refit folds) a search uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from automl.data.manifest import write_manifest
from automl.refit.folds import pool_folds
from automl.settings import choices
from automl.settings.run_config import SearchConfig
from automl.tasks import check_config, task_data


def write_split(config: SearchConfig, out: Path, *, log=print) -> tuple[Path, dict[str, int], int]:
    """Write the patient-grouped split a search of ``config`` uses as a manifest at ``out``: its
    train, then validation, then test rows in the order the search reads them, with each train
    and validation row's refit fold where the run refits (the anomaly task never does). A
    search given the file as ``--data`` trains, selects and scores on these same rows.

    Returns:
        The file, the images per split and the number of folds (0: no refit).
    """
    task, data = task_data(check_config(config), log=log)
    parts = data.parts
    folds = choices.refit_folds(data.config.refit) if task.evaluation != "anomaly" else 0
    table = pd.concat([parts[name].assign(split=name) for name in ("train", "val", "test")],
                      ignore_index=True)
    fold_ids = None
    if folds:
        pool = pd.concat([parts["train"], parts["val"]], ignore_index=True)
        fold_ids = np.r_[pool_folds(pool, folds, data.config.seed), np.full(len(parts["test"]), -1)]
    path = write_manifest(table, out, folds=fold_ids)
    return path, {name: len(part) for name, part in parts.items()}, folds
