"""Paths and environment variables, nothing else."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that points at a folder in the Kaggle layout.
DATA_ENV = "CXR_DATA_DIR"
#: Where decoded-image caches and the synthetic demo set go.
CACHE_ENV = "CXR_CACHE_DIR"
#: Default place for a downloaded copy, relative to the working directory.
DEFAULT_DATA_DIR = Path("data")

CLASS_FOLDERS = ("NORMAL", "PNEUMONIA")
SPLITS = ("train", "val", "test")


def cache_dir() -> Path:
    """Folder for decoded-image caches and generated data (created on demand)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cxr-automl"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
