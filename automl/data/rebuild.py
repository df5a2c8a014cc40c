"""A run's data rebuilt from its configuration: the one home of resolve, scan, split and decode."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from automl.data import index as data_index
from automl.data import manifest, source
from automl.data.pipeline import decode_images
from automl.data.splits import make_splits
from automl.settings.run_config import SearchConfig

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class RunData:
    """The rows a run trains, selects and scores on, and their images.

    Attributes:
        config: the configuration as run: budget defaults and the data folder filled in.
        index: the scanned data folder; ``index.problems`` also names the files that
            failed to decode later (:meth:`decoded`).
        parts: the task's rows of ``train``, ``val`` and ``test``.
    """

    config: SearchConfig
    index: data_index.Index
    parts: dict[str, pd.DataFrame]
    log: Callable = print

    def decoded(self, name: str, image_size: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """The rows of split ``name`` and their images at ``image_size`` (default the run's),
        aligned. A file that no longer decodes is dropped from the split, logged and added to
        ``index.problems``: one vanished or unreadable file never stops a command."""
        table = self.parts[name]
        images, problems = decode_images(table.path, image_size or self.config.image_size)
        if problems:
            failed = {p["path"] for p in problems}
            table = self.parts[name] = table[~table.path.isin(failed)].reset_index(drop=True)
            self.index.problems.extend(problems)
            for problem in problems:
                self.log(f"skipped {problem['path']}: {problem['reason']}")
        return table, images

    def check_decoding(self) -> None:
        """Decode every split at the run's image size before any work: the files that fail are
        dropped now, and the decoded images are cached for the steps that load them."""
        for name in SPLIT_NAMES:
            self.decoded(name)


def run_data(config: SearchConfig, *, log=print) -> RunData:
    """Resolve the data folder (or read the manifest), apply the budget defaults, scan and split
    as the run did.

    The same configuration gives the same rows: the search calls this before training, and a
    finished run's saved configuration gives them back to ``predict`` and ``embed``.

    Args:
        config: the search's configuration, or a finished run's saved one.
        log: receives one line per skipped file.

    Raises:
        ValueError: an option of the budget's defaults is not allowed (the caller has checked
            the configuration as given). DataError: the folder holds no usable image.
        ManifestError: a row of the manifest is bad (each is named).
    """
    src = source.resolve(config.data, log=log) if not config.smoke else \
        source.DataSource(source.synthetic_set(), synthetic=True)
    config = dataclasses.replace(config.with_defaults(src.synthetic), data=str(src.path)).validate()
    index = manifest.load(src.path) if manifest.is_manifest(src.path) else data_index.scan(src.path)
    for problem in index.problems:
        log(f"skipped {problem['path']}: {problem['reason']}")
    for warning in index.warnings:
        log(f"warning: {warning}")
    splits = make_splits(index, val_fraction=config.val_fraction, seed=config.seed)
    parts = {name: getattr(splits, name) for name in SPLIT_NAMES}
    return RunData(config, index, parts, log)
