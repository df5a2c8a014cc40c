"""Facts read from a run's ``summary.json``: how its choices were made, for every reader of the records."""

from __future__ import annotations

from automl.records.values import dig


def averaged_epochs(refit: dict) -> list[int]:
    """The distinct numbers of last epochs whose weights a refit's fold models averaged
    (``[1]``: none averaged; ``[]`` for refits recorded before the average existed)."""
    return sorted({f.get("averaged_epochs", 1) for f in refit.get("fold_records", []) if isinstance(f, dict)})


def threshold_rule(summary: dict) -> str:
    """The ``--threshold`` rule the run's threshold came from (``balanced`` by default)."""
    return str(dig(summary, "config", "threshold") or "balanced")


def chosen_out_of_fold(summary: dict) -> bool:
    """Whether the run's choices after the trial (threshold, class weights, averaging) were
    made on a cross-validated refit's out-of-fold scores rather than on validation."""
    return summary.get("val_source") == "out-of-fold"


def saliency_images(summary: dict) -> str:
    """Which images the deletion test used: validation's, or after a refit the pool's, which
    the fold models mostly trained on (:func:`automl.evaluation.explain.explain`)."""
    if chosen_out_of_fold(summary):
        return "pneumonia images of train + validation, the refit's pool, which the fold models trained on"
    return "validation pneumonia images"
