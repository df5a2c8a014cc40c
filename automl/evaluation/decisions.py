"""Decision rules chosen on validation: a threshold for 1-D scores, class weights for probabilities."""

from __future__ import annotations

import numpy as np

from automl.evaluation.bootstrap import macro_f1_from_confusion
from automl.evaluation.checks import check_labels, check_scores
from automl.settings.choices import THRESHOLD_RULES, operating_point
from automl.settings.labels import is_positive, negative_label

PRIOR_GRID = np.geomspace(0.25, 4.0, 9)
# The operating points a delivered binary model lists (model card, export metadata): the
# screening side first.
OPERATING_POINTS = ("sens:0.99", "sens:0.95", "sens:0.90", "spec:0.90", "spec:0.95")


def choose_threshold(y_true, scores, *, rule: str | float = "balanced") -> float:
    """Pick a decision threshold on validation data (predict positive when ``score >= t``).

    Args:
        y_true: Binary labels of shape (n,), 1 = PNEUMONIA / abnormal.
        scores: Scores of shape (n,), higher = more likely positive; probabilities or
            unbounded anomaly scores.
        rule: ``"balanced"`` (max balanced accuracy), ``"youden"`` (max TPR - FPR, same
            optimum), ``"f1"`` (max positive-class F1), an operating point ``"sens:X"`` (the
            highest threshold whose sensitivity is at least X: as few false alarms as that
            sensitivity allows) or ``"spec:X"`` (the lowest whose specificity is at least X),
            or a number / numeric string that is returned as is.

    Returns:
        The threshold. Candidates are the smallest score, midpoints between sorted unique
        scores, and just above the largest; ties go to the candidate nearest the median of
        the tied candidates.
    """
    try:
        value = float(rule)
    except (TypeError, ValueError):
        value = None
    if value is not None:
        if not np.isfinite(value):
            raise ValueError(f"numeric rule must be finite, got {rule!r}")
        return value
    point = operating_point(rule)
    if point is None and rule not in THRESHOLD_RULES:
        raise ValueError(f"rule must be 'balanced', 'youden', 'f1', 'sens:X', 'spec:X' or a number, "
                         f"got {rule!r}")
    y = check_labels(y_true, n_classes=2)
    s = check_scores(scores, len(y))
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    needs = {"f1": "positives", "sens": "positives", "spec": "negatives"}.get(
        point[0] if point else rule, "both classes")
    if (needs != "negatives" and n_pos == 0) or (needs != "positives" and n_neg == 0):
        raise ValueError(f"rule {rule!r} needs {needs} in y_true, got {n_pos} positives "
                         f"and {n_neg} negatives")
    u = np.unique(s)
    cand = np.r_[u[0], (u[:-1] + u[1:]) / 2, np.nextafter(u[-1], np.inf)]
    tp = n_pos - np.searchsorted(np.sort(s[y == 1]), cand, side="left")
    fp = n_neg - np.searchsorted(np.sort(s[y == 0]), cand, side="left")
    if point is not None:
        name, target = point
        # Sensitivity falls and specificity rises with the threshold (candidates ascend); a
        # small tolerance so that a target of exactly k/n is met by k positives.
        if name == "sens":
            return float(cand[tp / n_pos >= target - 1e-12][-1])
        return float(cand[(n_neg - fp) / n_neg >= target - 1e-12][0])
    if rule == "f1":
        obj = 2 * tp / (2 * tp + fp + (n_pos - tp))
    else:
        obj = tp / n_pos - fp / n_neg
    best = cand[obj >= obj.max() - 1e-12]
    return float(best[np.argmin(np.abs(best - np.median(best)))])


def operating_point_table(y_true, scores, rules=OPERATING_POINTS) -> list[dict]:
    """For each rule (see :func:`choose_threshold`), the threshold it picks on ``(y_true,
    scores)`` and the sensitivity and specificity that threshold has there."""
    y = check_labels(y_true, n_classes=2)
    s = check_scores(scores, len(y))
    rows = []
    for rule in rules:
        threshold = choose_threshold(y, s, rule=rule)
        positive = s >= threshold
        rows.append({"rule": str(rule), "threshold": threshold,
                     "sensitivity": float(positive[y == 1].mean()),
                     "specificity": float((~positive[y == 0]).mean())})
    return rows



def selection_operating_points(scores: dict | None, summary: dict,
                               rules=OPERATING_POINTS) -> list[dict] | None:
    """:func:`operating_point_table` on a run's clean selection rows (``scores`` as
    :func:`automl.records.read_scores` gives them: validation, or a refit's out-of-fold
    scores): thresholds a receiver of a two-class model (binary, or an anomaly score) may
    pick instead of the run's own. None for a multiclass run, without scores, or without
    scores of both classes."""
    if summary.get("task") == "multiclass" or scores is None:
        return None
    rows = scores["selection"]
    y = is_positive(rows.label, negative=negative_label(summary))
    if "score" not in rows or y.min(initial=1) == y.max(initial=0):
        return None
    return operating_point_table(y, rows.score.to_numpy(), rules)

def choose_prior_correction(y_true, probs) -> np.ndarray | None:
    """Search per-class weights w (w_0 = 1, others on a 0.25..4 geometric grid, 2 rounds of
    coordinate ascent) maximising validation macro-F1 of ``argmax(probs * w)``.

    Args:
        y_true: Labels of shape (n,) in 0..k-1.
        probs: Class probabilities of shape (n, k).

    Returns:
        Weights of shape (k,) if they beat plain argmax macro-F1 by > 1e-9, else None.
    """
    p = check_scores(probs, len(np.asarray(y_true)), "probs")
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (n, k), got shape {p.shape}")
    k = p.shape[1]
    y = check_labels(y_true, n_classes=k)

    def score(w: np.ndarray) -> float:
        cm = np.bincount(y * k + np.argmax(p * w, axis=1), minlength=k * k).reshape(k, k)
        return float(macro_f1_from_confusion(cm))

    w = np.ones(k)
    base = best = score(w)
    for _ in range(2):
        for c in range(1, k):
            for g in PRIOR_GRID:
                trial = w.copy()
                trial[c] = g
                if (val := score(trial)) > best + 1e-12:
                    best, w = val, trial
    return w if best > base + 1e-9 else None
