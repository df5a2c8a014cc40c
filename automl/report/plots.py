"""PNG plots of a run: confusion matrix, ROC curves, training curves, anomaly maps, saliency, studies."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from automl import records  # noqa: E402
from automl.evaluation import metrics  # noqa: E402
from automl.records.trials import COMPLETED  # noqa: E402
from automl.settings import choices  # noqa: E402
from automl.settings.labels import is_positive, negative_label, negative_name, positive_name  # noqa: E402


def confusion_matrix_png(matrix, class_names, path: Path, *, title: str) -> None:
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(3.2 + 0.6 * len(class_names), 3 + 0.5 * len(class_names)))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def roc_png(curves: dict[str, tuple], path: Path, *, title: str) -> None:
    """``curves``: label -> (y_true binary, scores)."""
    fig, ax = plt.subplots(figsize=(4.2, 4))
    for label, (y, s) in curves.items():
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr = metrics.roc_points(y, s)
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def history_png(history: dict, path: Path, *, title: str) -> None:
    names = sorted({k.removeprefix("val_") for k in history})
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def score_histogram_png(scores: pd.DataFrame, threshold: float, path: Path) -> None:
    """Anomaly-score histograms per subtype (normal, bacterial, viral) and split, with the
    validation-chosen threshold."""
    order = ["val", records.SCORES_OUT_OF_FOLD, "test"]
    splits = sorted(scores.split.unique(), key=lambda s: order.index(s) if s in order else len(order))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 3.2), squeeze=False)
    colours = {"normal": "tab:blue", "bacteria": "tab:red", "virus": "tab:orange"}
    for ax, split in zip(axes[0], splits):
        part = scores[scores.split == split]
        bins = np.linspace(part.score.min(), part.score.max(), 40)
        for kind, colour in colours.items():
            values = part.score[part.subtype == kind]
            if len(values):
                ax.hist(values, bins=bins, alpha=0.5, color=colour, label=f"{kind} ({len(values)})")
        ax.axvline(threshold, color="black", ls="--", label="threshold (val)")
        ax.set_title(f"{split}: anomaly score")
        ax.set_xlabel("anomaly score")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reconstruction_grid_png(images: np.ndarray, predictions: np.ndarray, maps: np.ndarray,
                            labels: list[str], path: Path, *, defect: bool = False) -> None:
    """Rows: input, prediction (reconstruction, in-painting or defect map), anomaly map;
    one column per example."""
    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.7 * n, 5.2), squeeze=False)
    names = ("input", "defect map" if defect else "prediction", "anomaly map")
    for j in range(n):
        panels = ((images[j][..., 0], "gray", 0, 1), (predictions[j][..., 0], "gray" if not defect
                  else "inferno", 0, 1), (maps[j], "inferno", 0, None))
        for i, (panel, cmap, vmin, vmax) in enumerate(panels):
            axes[i, j].imshow(panel, cmap=cmap, vmin=vmin, vmax=vmax)
            axes[i, j].axis("off")
        axes[0, j].set_title(labels[j], fontsize=7)
    for i, name in enumerate(names):
        axes[i, 0].text(-0.1, 0.5, name, transform=axes[i, 0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def tsne_png(points: np.ndarray, labels, subtypes, path: Path, *, title: str) -> None:
    """Two panels of the same map: coloured by class, and by subtype."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, values, name in ((axes[0], labels, "class"), (axes[1], subtypes, "subtype")):
        for value in sorted(set(values)):
            mask = np.asarray(values) == value
            ax.scatter(points[mask, 0], points[mask, 1], s=4, alpha=0.6, label=f"{value} ({mask.sum()})")
        ax.set_title(f"by {name}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(markerscale=3, fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_plots(run_dir: Path, summary: dict, best: dict) -> list[str]:
    """Write the standard PNGs of a finished run; returns their file names."""
    run_dir = Path(run_dir)
    written = []
    split = "test" if summary.get("test") else "val"
    confusion_matrix_png(summary[split]["confusion_matrix"], summary[split]["class_names"],
                         run_dir / "confusion_matrix.png",
                         title=f"{summary['task']}: {split} confusion matrix")
    written.append("confusion_matrix.png")
    scores = records.read_score_rows(run_dir)
    curves = {}
    for part, frame in scores.groupby("split"):
        y = is_positive(frame.label, int, negative=negative_label(summary))
        s = records.positive_scores(frame)
        # A refit's out-of-fold rows ("oof") are what its summary calls "val".
        measured = summary["val" if part == records.SCORES_OUT_OF_FOLD else part]
        name = "out-of-fold (train + val)" if part == records.SCORES_OUT_OF_FOLD else part
        auc = measured.get("auc_pneumonia", measured["auc"])
        curves[f"{name} (AUC {auc:.3f})" if auc is not None else name] = (y, s.to_numpy())
    roc_png(curves, run_dir / "roc.png", title=f"{summary['task']}: {positive_name(summary)} vs "
                                               f"{negative_name(summary)} ROC")
    written.append("roc.png")
    if best.get("history"):
        history_png(best["history"], run_dir / "training_curves.png",
                    title=f"trial {best['trial_id']} (best)")
        written.append("training_curves.png")
    return written


def anomaly_plots(run_dir: Path, summary: dict, examples: dict) -> list[str]:
    """An anomaly run's score histograms (from ``scores.csv``) and its reconstruction grid of
    ``examples`` (:func:`automl.evaluation.explain.reconstruction_examples`); returns their
    file names."""
    run_dir = Path(run_dir)
    score_histogram_png(records.read_score_rows(run_dir), summary["threshold"],
                        run_dir / "score_histogram.png")
    reconstruction_grid_png(examples["inputs"], examples["predictions"], examples["maps"], examples["labels"],
                            run_dir / "reconstructions.png", defect=examples["defect"])
    return ["score_histogram.png", "reconstructions.png"]


#: Colours of a study plot's rows: our seeds, their mean, published figures (colour-blind safe).
STUDY_COLOURS = {"seed": "#0072B2", "mean": "#000000", "published": "#D55E00"}


def study_png(panels: dict[str, list[tuple[str, str, float, tuple[float, float] | None]]], path: Path, *,
              title: str) -> None:
    """One panel per metric, one row per system, each row labelled on the left: a seed's
    test value with its 95% interval, the seeds' mean with ± one standard deviation, and
    published figures with their 95% interval where known.

    Args:
        panels: metric -> rows of ``(label, kind, value, (low, high) or None)``; ``kind`` is
            ``seed``, ``mean`` or ``published`` (:data:`STUDY_COLOURS`). Every panel lists the
            same labels in the same order (a missing value: NaN).
    """
    labels = [row[0] for row in next(iter(panels.values()))]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 + 3.4 * len(panels), 1.3 + 0.36 * len(labels)),
                             sharey=True, squeeze=False)
    ys = list(range(len(labels)))[::-1]
    for ax, (metric, rows) in zip(axes[0], panels.items()):
        for y, (_, kind, value, interval) in zip(ys, rows):
            if value is None or value != value:
                continue
            colour = STUDY_COLOURS[kind]
            if interval is not None:
                ax.plot(interval, [y, y], color=colour, lw=2, solid_capstyle="butt")
            ax.plot([value], [y], "D" if kind == "mean" else "o", color=colour, ms=7 if kind == "mean" else 6)
            ax.annotate(f"{value:.3f}", (value, y), xytext=(0, 6), textcoords="offset points",
                        ha="center", fontsize=8, color=colour)
        ax.set_title(f"test {metric}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=9)
        ax.set_ylim(-0.7, len(labels) - 0.3)
        ax.margins(x=0.08)
    axes[0][0].set_yticks(ys, labels, fontsize=9)
    for tick, (_, kind, _, _) in zip(axes[0][0].get_yticklabels(), next(iter(panels.values()))):
        tick.set_color(STUDY_COLOURS[kind])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reliability_png(y: np.ndarray, p: np.ndarray, path: Path, *, title: str, bins: int = 10) -> None:
    """Reliability diagram: observed pneumonia rate against mean predicted probability per
    equal-width bin (the diagonal is perfect calibration), with each bin's count."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.minimum(np.digitize(p, edges[1:-1]), bins - 1)
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfect")
    shown = [b for b in range(bins) if (which == b).any()]
    predicted = [p[which == b].mean() for b in shown]
    observed = [y[which == b].mean() for b in shown]
    ax.plot(predicted, observed, "o-", label="this model")
    for x, o, b in zip(predicted, observed, shown):
        ax.annotate(str(int((which == b).sum())), (x, o), fontsize=6, textcoords="offset points",
                    xytext=(3, -8))
    ax.set_xlabel("predicted P(pneumonia)")
    ax.set_ylabel("observed pneumonia rate")
    ax.set_title(title, fontsize=8)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pareto_png(trials: list[dict], objective: str, chosen: str, path: Path, *,
               cap: float | None = None) -> bool:
    """Validation objective against CPU latency of every completed trial, the Pareto front
    (no faster trial is better) joined, the chosen model ringed, a latency cap dashed.
    Returns False (and writes nothing) when no trial has a latency."""
    points = [(t["latency_ms"], t["metrics"][objective], str(t["trial_id"])) for t in trials
              if t.get("status") == COMPLETED and t.get("latency_ms") and objective in t.get("metrics", {})]
    if not points:
        return False
    sign = -1.0 if choices.objective_direction(objective) == "min" else 1.0
    front, best = [], -np.inf
    for latency, value, _ in sorted(points):
        if sign * value > best:
            front.append((latency, value))
            best = sign * value
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    ax.scatter([p[0] for p in points], [p[1] for p in points], s=14, color="grey", label="trial")
    ax.plot(*zip(*front), "o-", color="tab:blue", ms=4, label="Pareto front")
    for latency, value, tid in points:
        if tid == str(chosen):
            ax.scatter([latency], [value], s=120, facecolors="none", edgecolors="tab:red", lw=2,
                       label=f"chosen (trial {tid})")
    if cap is not None:
        ax.axvline(cap, color="tab:red", ls="--", lw=1, label=f"cap {cap:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("CPU latency, ms per image (batch 1)")
    ax.set_ylabel(f"validation {objective}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def saliency_panel_png(images: np.ndarray, maps: np.ndarray, titles: list[str], path: Path, *,
                       title: str) -> None:
    """Each image with its saliency map overlaid (red = where the evidence for pneumonia is)."""
    n = len(images)
    columns = min(n, 4)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.45 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, heat, text in zip(axes.ravel(), images, maps, titles):
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
        ax.imshow(heat, cmap="jet", alpha=0.35, vmin=0, vmax=1)
        ax.set_title(text, fontsize=6.5)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
