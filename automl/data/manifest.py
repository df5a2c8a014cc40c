"""A data manifest: a CSV or Parquet file naming each image, its label and optionally its
patient, subtype and split; read into the same :class:`~automl.data.index.Index` a folder gives.

Columns: ``path`` (relative to the manifest's folder) and ``label``; optional ``patient_id``,
``subtype``, ``split`` (``train`` / ``val`` / ``test``) and ``fold`` (the refit's fold of a
train or validation row, as ``automl data split`` writes it). Row N is the N-th row below the
header. Every row is checked before any work starts; a bad one is an error that names it.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from automl.data.index import COLUMNS, DataError, Index, check_image, scan
from automl.settings.paths import SPLITS

SUFFIXES = (".csv", ".parquet", ".pq")
REQUIRED = ("path", "label")
OPTIONAL = ("patient_id", "subtype", "split", "fold")
NO_PATIENT_WARNING = ("no patient_id column: the split cannot be grouped by patient (each image is "
                      "taken as its own patient), so one patient's images may land in train and "
                      "validation, or in test")
# How many problems an error message lists (the rest are counted): enough to see a pattern.
LISTED = 20


class RowsError(DataError):
    """A file of rows (a manifest, a predictions file) with rows that cannot be used;
    ``problems`` holds one line per bad row, each naming it."""

    def __init__(self, file: Path, problems: list[str]):
        self.problems = problems
        more = f"\n  ... and {len(problems) - LISTED} more" if len(problems) > LISTED else ""
        super().__init__(f"{file}: {len(problems)} problem(s); nothing was run:\n  "
                         + "\n  ".join(problems[:LISTED]) + more)


class ManifestError(RowsError):
    """A manifest with rows that cannot be used."""


@dataclass
class Checked:
    """A manifest read and checked: its index (None when a column is missing), one line per
    bad row (``errors``) and what holds for the whole file (``warnings``)."""

    index: Index | None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_manifest(path: Path | str) -> bool:
    """Whether ``path`` names a manifest file (by its suffix) rather than a data folder."""
    return Path(path).suffix.lower() in SUFFIXES and not Path(path).is_dir()


def load_index(path: Path | str) -> Index:
    """The index of a data folder (:func:`automl.data.index.scan`) or of a manifest (:func:`load`)."""
    return load(path) if is_manifest(path) else scan(path)


def load(path: Path | str, *, workers: int = 4) -> Index:
    """Read and check every row of the manifest at ``path``.

    Raises:
        ManifestError: any row is bad (every bad row is named), or a required column is missing.
    """
    checked = check(path, workers=workers)
    if checked.errors:
        raise ManifestError(Path(path), checked.errors)
    return checked.index


def read_table(path: Path) -> pd.DataFrame:
    """The rows of a CSV or Parquet file as text (a blank cell is ``""``), column names
    lower-cased: a manifest, or a predictions file."""
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            frame = pd.read_parquet(path).astype(str).replace({"None": "", "nan": "", "<NA>": ""})
    except FileNotFoundError:
        raise DataError(f"{path}: file does not exist") from None
    except (OSError, ValueError, ImportError) as error:
        raise DataError(f"{path}: cannot be read as CSV or Parquet: {error}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame.apply(lambda column: column.str.strip())


def check(path: Path | str, *, workers: int = 4) -> Checked:
    """Every problem of the manifest at ``path``: each row's own (its file, split, label,
    patient), then those between rows (a duplicate path, one patient or one image content in
    two splits)."""
    path = Path(path)
    frame = read_table(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        return Checked(None, [f"{path.name}: missing column(s) {', '.join(missing)} (a manifest needs "
                              f"{', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)})"])
    if frame.empty:
        return Checked(None, [f"{path.name}: no rows"])
    root = path.resolve().parent
    files = [os.path.normpath(root / p) if p and not os.path.isabs(p) else "" for p in frame.path]
    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(lambda f: _file_problem(Path(f), root) if f else None, files))
    errors = []
    for i, row in enumerate(frame.itertuples(index=False)):
        reason = _row_problem(row._asdict(), frame.columns) or reasons[i]
        if reason:
            errors.append(f"{path.name} row {i + 1} ({row.path}): {reason}")
    table = _table(frame, files)
    errors += [f"{path.name} {line}" for line in _between_rows(table, list(frame.path),
                                                               "split" in frame.columns)]
    warnings = [] if "patient_id" in frame.columns else [f"{path.name}: {NO_PATIENT_WARNING}"]
    return Checked(Index(root, table, [], manifest=path, warnings=warnings), errors, warnings)


def _file_problem(file: Path, root: Path) -> str | None:
    if not file.exists() and not file.is_symlink():
        return f"no such file {file}"
    return check_image(file, root)


def _row_problem(row: dict, columns) -> str | None:
    """What is wrong with one row on its own (its file aside), or None."""
    if not row["path"]:
        return "path is empty"
    if os.path.isabs(row["path"]):
        return "path must be relative to the manifest's folder"
    if not row["label"]:
        return "label is empty"
    if "split" in columns and row["split"] not in SPLITS:
        return (f"unknown split {row['split']!r} (expected {', '.join(SPLITS)}; give every row one, "
                "or leave the column out)")
    if "patient_id" in columns and not row["patient_id"]:
        return "patient_id is empty"
    if "fold" in columns and row["fold"] and not row["fold"].isdigit():
        return f"fold {row['fold']!r} is not a whole number >= 0"
    return None


def _table(frame: pd.DataFrame, files: list[str]) -> pd.DataFrame:
    """The index table of the manifest's rows (``COLUMNS``, then ``row`` and ``fold``)."""
    blank = pd.Series([""] * len(frame))
    table = pd.DataFrame({
        "path": files, "split": frame.get("split", blank), "label": frame.label,
        "subtype": frame.get("subtype", blank).where(frame.get("subtype", blank) != "", frame.label),
        # Without patient ids, each image is its own patient (what the warning says).
        "patient": frame.get("patient_id", frame.path),
    })[COLUMNS]
    table["row"] = range(1, len(frame) + 1)
    if "fold" in frame.columns:
        table["fold"] = pd.to_numeric(frame.fold, errors="coerce").astype("Int64")
    return table


def _between_rows(table: pd.DataFrame, given: list[str], has_split: bool) -> list[str]:
    """``row N (path): reason`` for a duplicate path and, with splits given, for a patient in two
    splits (or two folds) and an image content (SHA-256) in two splits; ``given``: each row's
    path as the manifest writes it."""
    lines, first = [], {}
    for row, path in zip(table.row, table.path):
        if path and path in first:
            lines.append(f"row {row} ({given[row - 1]}): duplicate path, also row {first[path]}")
        first.setdefault(path, row)
    if not has_split:
        return lines
    lines += _straddling(table, given, table.patient, "patient")
    if "fold" in table:
        folds = table.fold.astype(object).where(table.fold.notna(), None)
        lines += _straddling(table, given, table.patient, "patient", within=folds, kind="fold")
    unique = [first[path] == row for row, path in zip(table.row, table.path)]  # duplicates aside
    digests = [_digest(path) if keep else None for path, keep in zip(table.path, unique)]
    return lines + _straddling(table, given, pd.Series(digests), "image content")


def _straddling(table: pd.DataFrame, given: list[str], key: pd.Series, what: str, *,
                within: pd.Series | None = None, kind: str = "split") -> list[str]:
    """A line for each row whose ``key`` (patient, content digest) an earlier row has in another
    ``within`` (default the split); rows whose key or place is None are not compared."""
    within = table.split if within is None else within
    seen: dict = {}
    lines = []
    for row, value, place in zip(table.row, key, within):
        if value is None or place is None or (kind == "split" and place not in SPLITS):
            continue  # an unknown split is its row's own problem
        other = seen.setdefault(value, (place, row))
        if other[0] != place:
            name = f"{what} {value!r}" if what == "patient" else f"the same {what} as row {other[1]}"
            lines.append(f"row {row} ({given[row - 1]}): {name} is in {kind} {place} here and in {kind} "
                         f"{other[0]} at row {other[1]}: it must be in one {kind}")
    return lines


def _digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None  # the file's own problem is reported already


def write_manifest(table: pd.DataFrame, out: Path, *, folds=None) -> Path:
    """Write ``table`` (index rows) as a manifest at ``out`` (CSV, or Parquet by the suffix):
    paths relative to ``out``'s folder, ``patient`` as ``patient_id``, and ``fold`` when given
    (one per row; blank where a row has none)."""
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"--out: got {out}; a manifest is a {' or '.join(SUFFIXES)} file")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({
        "path": [os.path.relpath(p, out.resolve().parent) for p in table.path],
        "label": table.label.to_numpy(), "patient_id": table.patient.to_numpy(),
        "subtype": table.subtype.to_numpy(), "split": table.split.to_numpy()})
    if folds is not None:
        frame["fold"] = ["" if f is None or f < 0 else str(int(f)) for f in folds]
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return out


def folder_manifest(index: Index) -> pd.DataFrame:
    """The rows a folder's index gives a manifest: the official ``val`` folder's images are
    part of the training pool (the search carves validation from train + val by patient), so
    they are written as ``train``; the search on the manifest then splits exactly as on the folder."""
    table = index.table.copy()
    table["split"] = table.split.replace({"val": "train"})
    return table
