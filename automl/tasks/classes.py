"""A task's classes read from the data: the binary task's two labels, the multiclass task's
labels or Kermany subtypes. A label the task cannot use is an error naming its first row."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from automl.data.index import Index
from automl.settings.labels import NEGATIVE_LABEL, POSITIVE_LABEL

#: The multiclass task's classes on Kermany's data: the subtype its file names give.
KERMANY_SUBTYPES = ("normal", "bacteria", "virus")
#: Labels (in any case) the multiclass task takes as its reference class, 0: what sensitivity,
#: specificity and the bias measures read as negative. Without one, the first label in order.
REFERENCE_NAMES = ("normal", "healthy", "negative", "no finding", "no_finding", "control")


def where(index: Index, position: int) -> str:
    """Where row ``position`` of ``index.table`` comes from: ``manifest.csv row 7 (a.png)``, or its file."""
    row = index.table.iloc[position]
    if index.manifest is not None and "row" in index.table:
        return f"{index.manifest.name} row {row['row']} ({os.path.relpath(row.path, index.root)})"
    return str(row.path)


def binary_classes(index: Index, positive: str, task: str = "binary") -> tuple[str, str]:
    """``(negative, positive)``: ``positive`` (``--positive``) and the one other label of the data.

    Raises:
        ValueError: no image has the positive label, there is no other label, or a third label
            (naming its first row).
    """
    labels = list(dict.fromkeys(index.table.label))
    if positive not in labels:
        raise ValueError(f"--positive: got {positive!r}, a label no image of {_data(index)} has; its "
                         f"labels are {', '.join(map(repr, labels))}")
    others = [label for label in labels if label != positive]
    if not others:
        raise ValueError(f"{_data(index)}: every image is labelled {positive!r}; the {task} task needs a "
                         "second (negative) label")
    if len(others) > 1:
        first = int(np.flatnonzero(index.table.label.to_numpy() == others[1])[0])
        raise ValueError(f"{where(index, first)}: unknown label {others[1]!r}: the {task} task takes two "
                         f"labels, {positive!r} (--positive) and one other, here {others[0]!r}")
    return others[0], positive


def multiclass_classes(index: Index) -> tuple[str, tuple[str, ...], str]:
    """``(column, class names, negative label)`` of the multiclass task: every label of a data
    set with three or more (one of :data:`REFERENCE_NAMES` first; the rest sorted), or
    the Kermany subtypes of a two-label one.

    Raises:
        ValueError: two labels without Kermany subtypes, or a single label.
    """
    labels = sorted(dict.fromkeys(index.table.label))
    if len(labels) >= 3:
        names = sorted(labels, key=lambda label: (label.lower() not in REFERENCE_NAMES, label))
        return "label", tuple(names), names[0]
    if set(KERMANY_SUBTYPES) <= set(index.table.subtype):
        negative = NEGATIVE_LABEL if NEGATIVE_LABEL in labels else labels[0]
        return "subtype", KERMANY_SUBTYPES, negative
    raise ValueError(f"{_data(index)}: the multiclass task takes three or more labels (or the "
                     f"subtypes {', '.join(KERMANY_SUBTYPES)}), got {', '.join(map(repr, labels))}")


def _data(index: Index) -> str:
    return str(index.manifest or index.root)


class TwoLabels:
    """The classes of a two-class task (binary, anomaly): a negative and a positive label,
    NORMAL and PNEUMONIA until :meth:`use_labels` reads the data's own."""

    name = ""
    class_names: tuple[str, ...] = (NEGATIVE_LABEL, POSITIVE_LABEL)

    def use_labels(self, index: Index, positive: str) -> None:
        """Take the data's two labels, ``positive`` the positive one."""
        self.class_names = binary_classes(index, positive, self.name)

    @property
    def negative_label(self) -> str:
        return self.class_names[0]

    def labels(self, table: pd.DataFrame) -> np.ndarray:
        """1 for the positive label, 0 for the negative."""
        return (table.label.to_numpy() == self.class_names[1]).astype(np.int64)

    def classes_record(self) -> dict:
        """The summary's ``classes``: what each score and label of the run means."""
        return {"names": list(self.class_names), "column": "label", "negative": self.class_names[0],
                "positive": self.class_names[1]}

    def restore_classes(self, record: dict | None) -> None:
        """Take back the classes a finished run recorded (:meth:`classes_record`), if any."""
        if record:
            self.class_names = tuple(record["names"])
