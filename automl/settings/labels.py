"""The data set's class labels: which folder name is the positive (pneumonia) class."""

from __future__ import annotations

import numpy as np

from automl.settings.paths import CLASS_FOLDERS

NEGATIVE_LABEL, POSITIVE_LABEL = CLASS_FOLDERS


def is_positive(labels, dtype=np.int64) -> np.ndarray:
    """1 where a label (a ``label`` column of an index or ``scores.csv``) names the positive
    class, 0 elsewhere, as ``dtype``: the binary target every two-class reading uses."""
    return (np.asarray(labels) == POSITIVE_LABEL).astype(dtype)
