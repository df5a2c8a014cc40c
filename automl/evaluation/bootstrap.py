"""Seeded percentile-bootstrap intervals over images or patients, vectorised over resamples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl.evaluation.checks import check_labels, check_scores

CI_METRICS = ("accuracy", "f1_macro", "auc")


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
