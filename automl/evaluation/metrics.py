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

KINDS = ("binary", "multiclass", "anomaly")  # what evaluate() scores: see its kind argument
CI_METRICS = ("accuracy", "f1_macro", "auc")


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


def check_labels(y, name: str = "y_true", n_classes: int | None = None) -> np.ndarray:
    """``y`` as a non-empty 1-D int64 array of labels in 0..n_classes-1, or a ValueError that
    says what was received."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" or not np.all(np.mod(arr, 1) == 0) or arr.min() < 0:
        raise ValueError(f"{name} must hold non-negative integer labels, got {arr[:5]!r}...")
    arr = arr.astype(np.int64)
    if n_classes is not None and arr.max() >= n_classes:
        raise ValueError(f"{name} has label {arr.max()} but only {n_classes} classes exist")
    return arr


def check_scores(s, n: int, name: str = "scores", unit: bool = False) -> np.ndarray:
    """``s`` as finite floats of shape (n,) or (n, k) (in [0, 1] when ``unit``), or a ValueError."""
    arr = np.asarray(s, dtype=float)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape (n,) or (n, k) with n={n}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if unit and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must be probabilities in [0, 1], got [{arr.min()}, {arr.max()}]")
    return arr


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def macro_f1_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Macro F1 from confusion matrices of shape (..., k, k); classes with no cases count as 0."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    denom = cm.sum(-1) + cm.sum(-2)
    f1 = np.divide(2 * tp, denom, out=np.zeros(denom.shape), where=denom > 0)
    return f1.mean(-1)


def _rank_auc(counts: np.ndarray, positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC (ties count 1/2) for each row of case multiplicities ``counts`` (b, n)."""
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, np.diff(s) != 0])
    c = counts[:, order]
    pos = positive[order].astype(float)
    w_pos = np.add.reduceat(c * pos, starts, axis=1)
    w_neg = np.add.reduceat(c * (1 - pos), starts, axis=1)
    below = np.cumsum(w_neg, axis=1) - w_neg
    num = (w_pos * (below + 0.5 * w_neg)).sum(1)
    denom = w_pos.sum(1) * w_neg.sum(1)
    return np.divide(num, denom, out=np.full(len(num), np.nan), where=denom > 0)


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


def bootstrap_ci(y_true, y_pred, scores=None, *, groups=None, metrics: Sequence[str] = CI_METRICS,
                 n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05,
                 labels: Sequence[int] | None = None) -> dict[str, list[float] | None]:
    """Seeded percentile bootstrap over cases, or over groups of cases (vectorised).

    Args:
        y_true: True labels (n,).
        y_pred: Predicted labels (n,).
        scores: (n,) scores (AUC of label != 0) or (n, k) probs (macro one-vs-rest AUC).
        groups: Group of each case (n,), e.g. the patient: whole groups are resampled,
            so the images of one patient are never treated as independent evidence.
            None resamples cases.
        metrics: Subset of ``("accuracy", "f1_macro", "auc")``.
        n_resamples: Number of bootstrap resamples.
        seed: Seed for ``numpy.random.default_rng``.
        alpha: Two-sided level; returns the alpha/2 and 1 - alpha/2 percentiles.
        labels: Classes for macro-F1 (default 0..max label).

    Returns:
        ``{metric: [low, high]}``; None where no resample defines the metric (AUC
        resamples missing a class are skipped).
    """
    y = check_labels(y_true)
    yp = check_labels(y_pred, "y_pred")
    bad = set(metrics) - set(CI_METRICS)
    if yp.shape != y.shape or bad or n_resamples < 1 or not 0 < alpha < 1:
        raise ValueError(f"bad bootstrap_ci input: y_pred {yp.shape} vs y_true {y.shape}, "
                         f"unknown metrics {sorted(bad)}, n_resamples={n_resamples}, "
                         f"alpha={alpha}")
    n = len(y)
    s = None if scores is None else check_scores(scores, n)
    k = len(labels) if labels is not None else int(max(y.max(), yp.max()) + 1)
    if s is not None and s.ndim == 2:
        k = max(k, s.shape[1])
    counts = _resample_counts(n, groups, n_resamples, seed)
    vals: dict[str, np.ndarray] = {}
    if "accuracy" in metrics:
        vals["accuracy"] = counts @ (y == yp).astype(float) / counts.sum(1)
    if "f1_macro" in metrics:
        onehot = np.eye(k * k)[y * k + yp]
        vals["f1_macro"] = macro_f1_from_confusion((counts @ onehot).reshape(-1, k, k))
    if "auc" in metrics and s is not None:
        if s.ndim == 1:
            vals["auc"] = _rank_auc(counts, y != 0, s)
        else:
            vals["auc"] = np.mean([_rank_auc(counts, y == c, s[:, c])
                                   for c in range(s.shape[1])], axis=0)
    out: dict[str, list[float] | None] = {}
    for m in metrics:
        v = vals.get(m, np.array([]))
        v = v[np.isfinite(v)]
        out[m] = (np.percentile(v, [50 * alpha, 100 - 50 * alpha]).tolist() if v.size else None)
    return out


def _resample_counts(n: int, groups, n_resamples: int, seed: int) -> np.ndarray:
    """How often each case is drawn in each resample, (n_resamples, n): cases drawn with
    replacement, or whole groups (each drawn group brings all of its cases)."""
    rng = np.random.default_rng(seed)
    if groups is None:
        member, n_units = np.arange(n), n
    else:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {groups.shape}")
        _, member = np.unique(groups, return_inverse=True)
        n_units = int(member.max()) + 1
    idx = rng.integers(0, n_units, size=(n_resamples, n_units))
    offs = (np.arange(n_resamples)[:, None] * n_units + idx).ravel()
    drawn = np.bincount(offs, minlength=n_resamples * n_units).reshape(n_resamples, n_units)
    return drawn[:, member].astype(float)


def roc_points(y_true, scores) -> tuple[list[float], list[float]]:
    """ROC curve (fpr, tpr) as plain lists for plotting; y_true (n,) binary, scores (n,)."""
    y = check_labels(y_true, n_classes=2)
    fpr, tpr, _ = roc_curve(y, check_scores(scores, len(y)))
    return fpr.tolist(), tpr.tolist()


def _safe_auc(y_bin: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y_bin, s)) if 0 < y_bin.sum() < len(y_bin) else None


def evaluate(y_true, scores, *, kind: str, threshold: float | None = None, weights=None,
             class_names: Sequence[str], groups=None, n_resamples: int = 1000, seed: int = 0) -> dict:
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
    if kind == "multiclass":
        if s.ndim != 2 or s.shape[1] != k or threshold is not None:
            raise ValueError(f"multiclass needs probs of shape (n, {k}) and threshold=None, "
                             f"got {s.shape} and threshold={threshold!r}")
        y_pred = predict_labels(s, weights=weights)
        p_pos = 1.0 - s[:, 0]
        present = [c for c in range(k) if (y == c).any()]
        auc = (float(np.mean([roc_auc_score(y == c, s[:, c]) for c in range(k)]))
               if len(present) == k else None)
    else:
        if s.ndim != 1 or k != 2 or weights is not None:
            raise ValueError(f"{kind} needs 1-D scores, 2 class names and no weights, got "
                             f"{s.shape}, {names} and weights={weights!r}")
        if threshold is None and kind == "anomaly":
            raise ValueError("anomaly scores need a threshold chosen on validation data")
        threshold = 0.5 if threshold is None else float(threshold)
        y_pred = predict_labels(s, threshold=threshold)
        p_pos = s
        auc = _safe_auc(y, s)
    cm = confusion_matrix(y, y_pred, labels=list(range(k)))
    prec, rec, f1, sup = precision_recall_fscore_support(
        y, y_pred, labels=list(range(k)), zero_division=0)
    t, q = y != 0, y_pred != 0
    recalls = [rec[c] for c in range(k) if sup[c] > 0]
    out = {
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
        "brier": None if kind == "anomaly" else brier_score_loss(t.astype(int), p_pos),
        "ece": None if kind == "anomaly" else expected_calibration_error(t.astype(int), p_pos),
        "bias": bias_measures(y, y_pred),
        "ci": (bootstrap_ci(y, y_pred, s, groups=groups, n_resamples=n_resamples, seed=seed,
                            labels=list(range(k))) if n_resamples > 0 else None),
        "ci_unit": "image" if groups is None else "patient",
        "threshold": _num(threshold),
        "class_names": names,
    }
    if kind == "multiclass":
        out["auc_pneumonia"] = _safe_auc(t.astype(int), p_pos)
    return out
