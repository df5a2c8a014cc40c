"""Another system's predictions: one row per image of a split, checked row by row against it.

A predictions file (CSV or Parquet) has a ``path`` column (relative to the data folder or the
manifest's folder, as ``scores.csv`` writes it), then the scores: P(positive) for the binary
task (``score``, ``p_<positive>`` or the one other column), one probability column per class
for the multiclass task (``<class>``, ``p_<class>`` or ``score_<k>``, in class order), a
``score`` for the anomaly task (higher = more abnormal); optionally ``decision``, the class the
system decided (a class name or its number).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from automl.data.manifest import RowsError, read_table

DECISION = "decision"
# A softmax row sums to 1 up to float rounding; a row further off is not probabilities.
SUM_TOLERANCE = 0.01


@dataclass
class Predictions:
    """The scores and decisions of one split's images, in the split table's row order.

    Attributes:
        scores: (n,) P(positive) or anomaly scores, or (n, k) class probabilities.
        decided: (n,) the class index each image was decided as; None without a decision column.
    """

    scores: np.ndarray
    decided: np.ndarray | None = None


def read_predictions(path: Path, table: pd.DataFrame, *, evaluation: str, class_names, root: Path,
                     split: str = "test", elsewhere: dict[str, str] | None = None) -> Predictions:
    """The predictions of ``path`` for the images of ``table`` (one split's rows).

    Args:
        evaluation: the task's ``evaluation`` (``binary``, ``multiclass``, ``anomaly``).
        class_names: the task's classes, in score order.
        root: the folder the paths are relative to (the data folder or the manifest's).
        split: the split's name, for the messages.
        elsewhere: ``{relative path: split}`` of the data's other images, to say where an
            extra image belongs.

    Raises:
        RowsError: a missing image, an extra or duplicate one, a malformed probability or
            decision, each naming the row (N-th below the header) or the image.
    """
    path = Path(path)
    frame = read_table(path)
    if "path" not in frame.columns:
        raise RowsError(path, [f"{path.name}: no path column (columns: {', '.join(frame.columns)})"])
    columns = score_columns(path, list(frame.columns), evaluation, list(class_names))
    # As scores.csv writes them: relative to the data's folder.
    wanted = {os.path.normpath(os.path.relpath(p, root)): i for i, p in enumerate(table.path)}
    problems, position = [], {}
    for row, given in enumerate(frame.path, start=1):
        where = f"{path.name} row {row} ({given})"
        key = _relative(given, root) if given else ""
        if key in position:
            problems.append(f"{where}: duplicate path, also row {position[key][0]}")
        elif key not in wanted:
            other = (elsewhere or {}).get(key)
            problems.append(f"{where}: not an image of the {split} split"
                            + (f" (it is a {other} image)" if other else " (no image of the data)"))
        else:
            position[key] = (row, wanted[key])
    missing = [p for p in wanted if p not in position]
    if missing:
        problems.append(f"{path.name}: no prediction for {len(missing)} image(s) of the {split} split: "
                        + ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else ""))
    rows = sorted(position.values(), key=lambda pair: pair[1])
    scores = _numbers(frame, columns, rows, path, problems, unit=evaluation != "anomaly")
    decided = _decisions(frame, rows, path, list(class_names), problems) if DECISION in frame.columns \
        else None
    if problems:
        raise RowsError(path, problems)
    return Predictions(scores[:, 0] if len(columns) == 1 else scores, decided)


def score_columns(path: Path, columns: list[str], evaluation: str, class_names: list[str]) -> list[str]:
    """The score columns of a predictions file, in class order (one for binary and anomaly)."""
    names = [str(c).lower() for c in class_names]
    if evaluation == "multiclass":
        found = [next((c for c in (name, f"p_{name}", f"score_{k}") if c in columns), None)
                 for k, name in enumerate(names)]
        if None in found:
            raise RowsError(path, [f"{path.name}: no probability column for class(es) "
                                   f"{', '.join(n for n, f in zip(class_names, found) if f is None)} "
                                   f"(name them {', '.join(names)}, p_<class> or score_<k>)"])
        return found
    rest = [c for c in columns if c not in ("path", DECISION)]
    preferred = ("score",) if evaluation == "anomaly" else ("score", f"p_{names[1]}", names[1])
    found = next((c for c in preferred if c in columns), rest[0] if len(rest) == 1 else None)
    if found is None:
        raise RowsError(path, [f"{path.name}: expected one score column ({' or '.join(preferred)}), got "
                               f"{', '.join(rest) or 'none'}"])
    return [found]


def _relative(given: str, root: Path) -> str:
    """A path as the data's relative path: relative to ``root`` unless it is absolute."""
    return os.path.normpath(os.path.relpath(given, root) if os.path.isabs(given) else given)


def _numbers(frame: pd.DataFrame, columns: list[str], rows: list[tuple[int, int]], path: Path,
             problems: list[str], *, unit: bool) -> np.ndarray:
    """The score columns of ``rows`` ((file row, table position), in table order) as floats
    (n, len(columns)); a malformed value is a problem naming its row."""
    values = np.zeros((len(rows), len(columns)))
    for i, (row, _) in enumerate(rows):
        cells = frame.iloc[row - 1][columns]
        try:
            values[i] = [float(cell) for cell in cells]
        except ValueError:
            problems.append(f"{path.name} row {row}: a score is not a number ({', '.join(cells)})")
            continue
        if not np.all(np.isfinite(values[i])):
            problems.append(f"{path.name} row {row}: a score is NaN or infinite")
        elif unit and (values[i].min() < 0 or values[i].max() > 1):
            problems.append(f"{path.name} row {row}: a probability outside [0, 1] ({', '.join(cells)})")
        elif len(columns) > 1 and abs(values[i].sum() - 1) > SUM_TOLERANCE:
            problems.append(f"{path.name} row {row}: class probabilities sum to {values[i].sum():.4g}, not 1")
    for j in range(values.shape[1]):
        # A column written at float32 precision (as a Keras model's scores are, and our own
        # scores.csv) is read back as those float32 values: a run's own file then reproduces its
        # metrics to the last digit, where decimal float64 readings would move the Brier score.
        if np.array_equal(values[:, j].astype(np.float32).astype(str).astype(float), values[:, j]):
            values[:, j] = values[:, j].astype(np.float32)
    return values


def _decisions(frame: pd.DataFrame, rows: list[tuple[int, int]], path: Path, class_names: list[str],
               problems: list[str]) -> np.ndarray:
    """The ``decision`` of ``rows`` as class indices: a class name (any case) or its number."""
    codes = {name.lower(): k for k, name in enumerate(class_names)}
    codes.update({str(k): k for k in range(len(class_names))})
    decided = np.zeros(len(rows), dtype=np.int64)
    for i, (row, _) in enumerate(rows):
        value = str(frame.iloc[row - 1][DECISION]).lower()
        if value not in codes:
            problems.append(f"{path.name} row {row}: decision {value!r} is no class (expected "
                            f"{', '.join(class_names)} or 0..{len(class_names) - 1})")
        else:
            decided[i] = codes[value]
    return decided
