"""Where the data comes from: an explicit folder, ./data, a Kaggle download, or the synthetic set."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from automl.data import kaggle, synthetic
from automl.settings.paths import DATA_ENV, DEFAULT_DATA_DIR, cache_dir


@dataclass
class DataSource:
    path: Path
    synthetic: bool = False


def resolve(data: str | os.PathLike | None = None, *, download: bool = True, log=print) -> DataSource:
    """Pick the data folder, in this order: ``data`` (``--data``/``DATA=``), ``$CXR_DATA_DIR``,
    ``data/chest_xray``, a Kaggle download when credentials exist, the synthetic set."""
    explicit = data or os.environ.get(DATA_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{path}: data folder or manifest does not exist "
                                    f"(from --data/DATA/{DATA_ENV})")
        return DataSource(path)
    local = DEFAULT_DATA_DIR / "chest_xray"
    if local.is_dir():
        return DataSource(local)
    if download and kaggle.has_credentials():
        try:
            return DataSource(kaggle.download(DEFAULT_DATA_DIR, log=log))
        except kaggle.DownloadError as error:
            log(f"{error} Falling back to the synthetic demo set.")
    return DataSource(synthetic_set(), synthetic=True)


def synthetic_set(per_class: int = 60) -> Path:
    """The built-in demo set (generated once into the cache), with its banner printed."""
    print(synthetic.BANNER, file=sys.stderr)
    path = cache_dir() / f"synthetic-v2-{per_class}"
    if not (path / "test").is_dir():
        synthetic.write_synthetic(path, per_class=per_class)
    return path
