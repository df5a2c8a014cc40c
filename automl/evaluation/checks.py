"""Validation of labels and scores at the evaluation boundary, with errors that say what was received."""

from __future__ import annotations

import numpy as np


def check_labels(y, name: str = "y_true", n_classes: int | None = None) -> np.ndarray:
    """``y`` as a non-empty 1-D int64 array of labels in 0..n_classes-1, or a ValueError that
    says what was received."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" or not np.all(np.mod(arr, 1) == 0) or arr.min() < 0:
        raise ValueError(f"{name} must hold non-negative integer labels, got {arr[:5]!r}...")
    arr = arr.astype(np.int64)
    if n_classes is not None and arr.max() >= n_classes:
        raise ValueError(f"{name} has label {arr.max()} but only {n_classes} classes exist")
    return arr


def check_scores(s, n: int, name: str = "scores", unit: bool = False) -> np.ndarray:
    """``s`` as finite floats of shape (n,) or (n, k) (in [0, 1] when ``unit``), or a ValueError."""
    arr = np.asarray(s, dtype=float)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape (n,) or (n, k) with n={n}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if unit and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must be probabilities in [0, 1], got [{arr.min()}, {arr.max()}]")
    return arr
