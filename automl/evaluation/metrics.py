"""Evaluation metrics for chest X-ray classifiers: accuracy to AUC, calibration, bias, bootstrap CIs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from automl.evaluation.bootstrap import bootstrap_ci
from automl.evaluation.checks import check_labels, check_scores

KINDS = ("binary", "multiclass", "anomaly")  # what evaluate() scores: see its kind argument


# An AUC objective this close to 0.5 means a model that ranks no better than a coin.
CHANCE_AUC_MARGIN = 0.05


def chance_level_warning(objective: dict | None) -> str | None:
    """A warning when a run's chosen model is at chance on validation (an AUC objective
    within :data:`CHANCE_AUC_MARGIN` of 0.5), else None. Such a model can still be chosen,
    when it is the only full-size trial; its test scores then mean nothing."""
    name, value = str((objective or {}).get("name", "")), _num((objective or {}).get("value"))
    if value is None or not name.endswith(("auc", "auroc")) or value > 0.5 + CHANCE_AUC_MARGIN:
        return None
    return (f"the chosen model is at chance level on validation ({name} {value:.3f}): it has "
            "learned nothing usable (often a collapsed trial that predicts one constant); do not "
            "use it or quote its test scores as a result")






def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)






def predict_labels(scores_or_probs, *, threshold: float | None = None,
                   weights=None) -> np.ndarray:
    """Turn scores (n,) into 0/1 via ``score >= threshold`` (default 0.5), or
    probabilities (n, k) into ``argmax(probs * weights)`` (weights default to ones)."""
    arr = np.asarray(scores_or_probs, dtype=float)
    if arr.ndim == 1:
        if weights is not None:
            raise ValueError("weights apply to (n, k) probabilities, got 1-D scores")
        return (arr >= (0.5 if threshold is None else float(threshold))).astype(np.int64)
    if arr.ndim != 2 or threshold is not None:
        raise ValueError(f"expected 1-D scores or 2-D probs without threshold, got {arr.shape} "
                         f"with threshold={threshold!r}")
    w = np.ones(arr.shape[1]) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (arr.shape[1],):
        raise ValueError(f"weights must have shape ({arr.shape[1]},), got {w.shape}")
    return np.argmax(arr * w, axis=1).astype(np.int64)


def expected_calibration_error(y_true, prob_positive, *, n_bins: int = 15) -> float:
    """Binary ECE with equal-width bins on [0, 1]: sum_b (n_b/n) |mean(y_b) - mean(p_b)|.
    Lower is better; y_true (n,) in {0,1}, prob_positive (n,) in [0,1]."""
    y = check_labels(y_true, n_classes=2)
    p = check_scores(prob_positive, len(y), "prob_positive", unit=True)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    gap = np.abs(np.bincount(b, y, n_bins) - np.bincount(b, p, n_bins))
    return float(gap.sum() / len(y))


def brier_score_loss(y_true, prob_positive) -> float:
    """Mean squared error of P(positive) (n,) against 0/1 labels (n,); lower is better."""
    y = check_labels(y_true, n_classes=2)
    p = check_scores(prob_positive, len(y), "prob_positive", unit=True)
    return float(np.mean((p - y) ** 2))


def bias_measures(y_true, y_pred, *, positive: int | None = None) -> dict[str, float]:
    """Error-asymmetry measures, pneumonia vs normal (all 0 for a perfect classifier).

    Args:
        y_true: True labels (n,).
        y_pred: Predicted labels (n,).
        positive: Label meaning pneumonia; None means any label != 0 (multiclass).

    Returns:
        ``sens_spec_gap`` |sensitivity - specificity|; ``recall_spread`` max - min recall
        over classes present in y_true; ``positive_rate_skew`` predicted minus true
        pneumonia rate (> 0 over-calls pneumonia); ``false_normal_rate`` share of pneumonia
        cases predicted normal.
    """
    y = check_labels(y_true)
    yp = check_labels(y_pred, "y_pred")
    if yp.shape != y.shape:
        raise ValueError(f"y_pred shape {yp.shape} != y_true shape {y.shape}")
    t, q = (y != 0, yp != 0) if positive is None else (y == positive, yp == positive)
    sens = float((q & t).sum() / t.sum()) if t.any() else 0.0
    spec = float((~q & ~t).sum() / (~t).sum()) if (~t).any() else 0.0
    recalls = [float(np.mean(yp[y == c] == c)) for c in np.unique(y)]
    return {"sens_spec_gap": abs(sens - spec),
            "recall_spread": max(recalls) - min(recalls),
            "positive_rate_skew": float(q.mean() - t.mean()),
            "false_normal_rate": 1.0 - sens if t.any() else 0.0}






def roc_points(y_true, scores) -> tuple[list[float], list[float]]:
    """ROC curve (fpr, tpr) as plain lists for plotting; y_true (n,) binary, scores (n,)."""
    y = check_labels(y_true, n_classes=2)
    fpr, tpr, _ = roc_curve(y, check_scores(scores, len(y)))
    return fpr.tolist(), tpr.tolist()


def _safe_auc(y_bin: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y_bin, s)) if 0 < y_bin.sum() < len(y_bin) else None


def evaluate(y_true, scores, *, kind: str, threshold: float | None = None, weights=None,
             class_names: Sequence[str], groups=None, n_resamples: int = 1000, seed: int = 0,
             y_pred=None) -> dict:
    """Full JSON-serialisable evaluation of one model on one split.

    Args:
        y_true: Labels (n,); 0 = normal, != 0 = pneumonia.
        scores: binary: P(PNEUMONIA) (n,); anomaly: real-valued score (n,), higher = more
            abnormal; multiclass: probabilities (n, k).
        kind: what ``scores`` are: ``"binary"`` probabilities, ``"multiclass"``
            probabilities or ``"anomaly"`` scores (a task's ``evaluation``).
        threshold: Decision threshold for 1-D scores (binary default 0.5; required for
            anomaly, chosen on validation data). Must be None for multiclass.
        weights: Optional prior-correction weights (k,) for multiclass.
        class_names: Names in label order.
        groups: Patient (or other group) of each case (n,): ``ci`` then resamples
            whole patients; None resamples images. ``ci_unit`` says which.
        n_resamples: Bootstrap resamples for ``ci`` (0 disables: ``ci`` is None).
        seed: Bootstrap seed.
        y_pred: Decisions (n,) a system made itself (0..k-1): used instead of ``threshold`` and
            ``weights``, and the recorded ``threshold`` is None.

    Returns:
        Dict with n, accuracy, balanced_accuracy, f1_macro, auc (None if undefined),
        sensitivity, specificity, per_class, confusion_matrix (rows true, cols pred),
        brier, ece (None for anomaly), bias, ci, ci_unit, threshold, class_names, and for
        multiclass auc_pneumonia. All values are plain Python types.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    names = [str(c) for c in class_names]
    y = check_labels(y_true, n_classes=len(names))
    s = check_scores(scores, len(y), unit=kind != "anomaly")
    k = len(names)
    decided = None if y_pred is None else check_labels(y_pred, "y_pred", n_classes=k)
    y_pred, p_pos, auc, threshold = _decide(kind, y, s, names, threshold=threshold, weights=weights,
                                            decided=decided)
    t = y != 0
    out = _label_measures(y, y_pred, names, auc=auc)
    out.update({
        "brier": None if kind == "anomaly" else brier_score_loss(t.astype(int), p_pos),
        "ece": None if kind == "anomaly" else expected_calibration_error(t.astype(int), p_pos),
        "bias": bias_measures(y, y_pred),
        "ci": (bootstrap_ci(y, y_pred, s, groups=groups, n_resamples=n_resamples, seed=seed,
                            labels=list(range(k))) if n_resamples > 0 else None),
        "ci_unit": "image" if groups is None else "patient",
        "threshold": _num(threshold),
        "class_names": names,
    })
    if kind == "multiclass":
        out["auc_pneumonia"] = _safe_auc(t.astype(int), p_pos)
    return out


def _decide(kind: str, y: np.ndarray, s: np.ndarray, names: list[str], *, threshold, weights,
            decided: np.ndarray | None = None):
    """Predicted labels, P(pneumonia) (or the anomaly score), the AUC and the threshold
    applied (None for multiclass, and for ``decided``: decisions given) of checked labels ``y``
    and scores ``s``."""
    k = len(names)
    if kind == "multiclass":
        if s.ndim != 2 or s.shape[1] != k or threshold is not None:
            raise ValueError(f"multiclass needs probs of shape (n, {k}) and threshold=None, "
                             f"got {s.shape} and threshold={threshold!r}")
        present = [c for c in range(k) if (y == c).any()]
        auc = (float(np.mean([roc_auc_score(y == c, s[:, c]) for c in range(k)]))
               if len(present) == k else None)
        return (predict_labels(s, weights=weights) if decided is None else decided), 1.0 - s[:, 0], auc, \
            threshold
    if s.ndim != 1 or k != 2 or weights is not None:
        raise ValueError(f"{kind} needs 1-D scores, 2 class names and no weights, got "
                         f"{s.shape}, {names} and weights={weights!r}")
    if decided is not None:
        return decided, s, _safe_auc(y, s), None
    if threshold is None and kind == "anomaly":
        raise ValueError("anomaly scores need a threshold chosen on validation data")
    threshold = 0.5 if threshold is None else float(threshold)
    return predict_labels(s, threshold=threshold), s, _safe_auc(y, s), threshold


def _label_measures(y: np.ndarray, y_pred: np.ndarray, names: list[str], *, auc: float | None) -> dict:
    """n, accuracy, balanced accuracy, macro-F1, ``auc`` (given: it reads the scores),
    sensitivity, specificity, per-class precision, recall, F1 and support, and the confusion
    matrix (rows true, columns predicted), in the order the summary records them."""
    k = len(names)
    cm = confusion_matrix(y, y_pred, labels=list(range(k)))
    prec, rec, f1, sup = precision_recall_fscore_support(
        y, y_pred, labels=list(range(k)), zero_division=0)
    t, q = y != 0, y_pred != 0
    recalls = [rec[c] for c in range(k) if sup[c] > 0]
    return {
        "n": len(y),
        "accuracy": float(np.mean(y == y_pred)),
        "balanced_accuracy": float(np.mean(recalls)),
        "f1_macro": float(f1_score(y, y_pred, labels=list(range(k)), average="macro",
                                   zero_division=0)),
        "auc": auc,
        "sensitivity": float((q & t).sum() / t.sum()) if t.any() else 0.0,
        "specificity": float((~q & ~t).sum() / (~t).sum()) if (~t).any() else 0.0,
        "per_class": {names[c]: {"precision": float(prec[c]), "recall": float(rec[c]),
                                 "f1": float(f1[c]), "support": int(sup[c])} for c in range(k)},
        "confusion_matrix": cm.astype(int).tolist(),
    }
