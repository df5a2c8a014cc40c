"""The data set's class labels: which label is the positive (pneumonia) class, and a run's own labels."""

from __future__ import annotations

import numpy as np

from automl.settings.paths import CLASS_FOLDERS

NEGATIVE_LABEL, POSITIVE_LABEL = CLASS_FOLDERS


def is_positive(labels, dtype=np.int64, *, negative: str | None = None) -> np.ndarray:
    """1 where a label (a ``label`` column of an index or ``scores.csv``) names the positive
    class, 0 elsewhere, as ``dtype``: the binary target every two-class reading uses.

    Args:
        negative: the run's negative (reference) label (:func:`negative_label`): every other
            label is positive. None: the Kermany labels, positive = ``PNEUMONIA``.
    """
    labels = np.asarray(labels)
    return (labels == POSITIVE_LABEL if negative is None else labels != negative).astype(dtype)


def negative_label(summary: dict) -> str:
    """The label a run reads as negative (the reference class of sensitivity, specificity and
    the bias measures): its summary's ``classes`` record, ``NORMAL`` for runs made before runs
    recorded their classes."""
    return str(((summary or {}).get("classes") or {}).get("negative") or NEGATIVE_LABEL)


def positive_name(summary: dict) -> str:
    """What a run's report calls its positive class: ``pneumonia`` for the Kermany labels, the
    positive label (binary) or "not <negative>" (several positive classes) for a user's own."""
    classes = (summary or {}).get("classes") or {}
    if classes.get("negative", NEGATIVE_LABEL) == NEGATIVE_LABEL and \
            classes.get("positive", POSITIVE_LABEL) == POSITIVE_LABEL:
        return "pneumonia"
    return str(classes.get("positive") or f"not {classes.get('negative')}")


def negative_name(summary: dict) -> str:
    """What a run's report calls its negative class: ``normal`` for the Kermany labels, else the label."""
    return "normal" if own_labels(summary) is False else negative_label(summary)


def own_labels(summary: dict) -> bool:
    """Whether a run's classes are a user's own rather than Kermany's NORMAL / PNEUMONIA."""
    return positive_name(summary) != "pneumonia"
