"""Apply a finished run to new images: its preprocessing, its scored model and its decision rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from automl import records
from automl.data import index as data_index
from automl.evaluation import metrics
from automl.settings.paths import CLASS_FOLDERS
from automl.settings.run_config import SearchConfig


def collect(inputs: list[Path]) -> tuple[list[Path], list[dict]]:
    """Image files named or found (recursively) under ``inputs``, and ``{path, reason}`` for
    each one that cannot be used (the checks of ``automl data check``). Symlinked folders
    are not entered, so a folder that links to its parent makes no loop."""
    files, problems = [], []
    for item in map(Path, inputs):
        if item.is_dir():
            entries = sorted(item.rglob("*"))
            problems += [{"path": str(p), "reason": "a folder named like an image; not read"}
                         for p in entries if p.is_dir() and p.suffix.lower() in data_index.IMAGE_SUFFIXES]
            candidates = [p for p in entries if not p.is_dir() and not p.name.startswith(".")]
        elif item.exists() or item.is_symlink():
            candidates = [item]
        else:
            problems.append({"path": str(item), "reason": "no such file or folder"})
            continue
        for path in candidates:
            reason = data_index.check_image(path, path.parent)
            if reason:
                problems.append({"path": str(path), "reason": reason})
            else:
                files.append(path)
    return files, problems


def known_labels(files: list[Path]) -> pd.DataFrame | None:
    """Labels from a Kaggle-layout folder (``.../NORMAL/x.jpeg``, ``.../PNEUMONIA/y.jpeg``), or
    None when any file sits elsewhere."""
    if not files or any(f.parent.name not in CLASS_FOLDERS for f in files):
        return None
    return pd.DataFrame({"path": [str(f) for f in files],
                         "label": [f.parent.name for f in files],
                         "subtype": [data_index.subtype(f.parent.name, f.name) for f in files],
                         "patient": [data_index.patient_id(f.name) for f in files]})


def decision_threshold(run_dir: Path, summary: dict, rule: str | None, *, log=print) -> float | None:
    """The threshold ``predict`` applies: the run's own, or with ``rule`` (an operating point
    such as ``sens:0.95``, a named rule, or a number) one chosen on the run's clean selection
    scores in ``scores.csv`` (validation, or a refit's out-of-fold scores), never on the
    images being predicted.

    Raises:
        ValueError: a rule for a multiclass run (it decides by class weights), a bad rule,
            or a run folder without its selection scores.
    """
    from automl.evaluation.decisions import selection_operating_points
    from automl.settings import choices

    if rule is None:
        return summary.get("threshold")
    if summary.get("threshold") is None:
        raise ValueError(f"--threshold: run {summary['run_id']} decides by class weights, not a threshold")
    try:
        choices.check_threshold_rule(rule)
    except ValueError as error:
        raise ValueError(f"--threshold: {error}") from None
    if not choices.is_named_threshold_rule(rule):
        return float(rule)
    if not (Path(run_dir) / "scores.csv").exists():
        raise ValueError(f"--threshold {rule}: {Path(run_dir) / 'scores.csv'} is missing; it holds the "
                         "selection scores the threshold is chosen on")
    scores = records.read_scores(run_dir)
    points = selection_operating_points(scores, summary, rules=(rule,))
    if not points:
        raise ValueError(f"--threshold {rule}: the run's selection scores do not hold both classes")
    point = points[0]
    images = len(scores["selection"])
    log(f"threshold {point['threshold']:.4f} ({rule} on the run's {images} selection images: "
        f"sensitivity {point['sensitivity']:.3f}, specificity {point['specificity']:.3f}) instead of the "
        f"run's {summary['threshold']:.4f}")
    return point["threshold"]


def predict(run_dir: Path, inputs: list[Path], *, out: Path | None = None, cam: Path | None = None,
            threshold: str | None = None, log=print) -> int:
    """Score ``inputs`` (images or folders) with the run in ``run_dir``; print one row per
    image (and write them to ``out`` as CSV); with Kaggle-layout labels, print the metrics;
    with ``cam``, write each image's Grad-CAM and SmoothGrad overlays there (classifiers);
    with ``threshold``, decide by that rule instead of the run's own
    (:func:`decision_threshold`).

    Returns:
        The exit code: 0, or 1 when any input was skipped (each is named with its reason).
    """
    import automl
    from automl.data.pipeline import decode_images
    from automl.tasks import get_task

    run_dir = Path(run_dir)
    config, summary = SearchConfig.load(run_dir), records.read_json(run_dir / "summary.json")
    task, hparams = get_task(config.task), summary.get("best_hparams") or {}
    task.restore_classes(summary.get("classes"))
    cut = decision_threshold(run_dir, summary, threshold, log=log)
    files, problems = collect(inputs)
    # A file removed or made unreadable since it was checked is skipped like a damaged one.
    images, unread = decode_images(files, config.image_size, disk_cache=False)
    files = [f for f in files if str(f) not in {p["path"] for p in unread}]
    problems += unread
    for problem in problems:
        log(f"skipped {problem['path']}: {problem['reason']}")
    if not files:
        log("no usable image")
        return 1
    if task.evaluation == "anomaly":
        attach_reference(task, config)
    model = automl.load_model(run_dir / "best_model.keras")
    scores = task.scores(model, images, hparams=hparams)
    weights = None if summary.get("prior_weights") is None else np.asarray(summary["prior_weights"])
    rows = score_rows(task, files, scores, metrics.predict_labels(scores, threshold=cut, weights=weights))
    log(rows.to_string(index=False))
    if out:
        rows.to_csv(out, index=False)
        log(f"wrote {len(rows)} rows to {out}")
    if cam and task.evaluation != "anomaly":
        write_overlays(model, task, images, files, Path(cam), hparams=hparams)
        log(f"wrote {len(files)} saliency overlays to {cam}")
    labelled = known_labels(files)
    if labelled is not None and len(task.select(labelled)) == len(labelled):
        result = metrics.evaluate(task.labels(labelled), scores, kind=task.evaluation,
                                  threshold=cut, weights=weights,
                                  class_names=list(task.class_names),
                                  groups=labelled.patient.to_numpy(), n_resamples=0)
        log(f"against the folder labels: accuracy {result['accuracy']:.4f}, balanced accuracy "
            f"{result['balanced_accuracy']:.4f}, AUC {result['auc']}, sensitivity "
            f"{result['sensitivity']:.4f}, specificity {result['specificity']:.4f}")
    return 1 if problems else 0


def attach_reference(task, config: SearchConfig) -> None:
    """Give an anomaly task the run's normal training images: its score refers to them
    (feature distances), rebuilt from the run's saved configuration."""
    from automl.tasks import task_data
    from automl.tasks.base import SplitData

    _, data = task_data(config, log=lambda *a, **k: None)
    task.attach_training(SplitData(*data.decoded("train")))


def score_rows(task, files: list[Path], scores: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """One row per image: its path, the scores (one column, or one per class) and the decision."""
    rows = pd.DataFrame({"path": [str(f) for f in files]})
    if np.ndim(scores) == 1:
        rows["anomaly_score" if task.evaluation == "anomaly" else "p_pneumonia"] = scores
    else:
        for k, name in enumerate(task.class_names):
            rows[f"p_{name}"] = scores[:, k]
    rows["decision"] = [task.class_names[k] for k in predicted]
    return rows


def write_overlays(model, task, images: np.ndarray, files: list[Path], folder: Path, *,
                   hparams: dict) -> None:
    """``<name>_saliency.png`` per image: Grad-CAM and SmoothGrad of P(pneumonia) overlaid."""
    from automl.evaluation import saliency
    from automl.report import plots

    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(images), 32):
        x = task.model_inputs(images[start:start + 32], hparams)
        maps = {m: saliency.saliency_maps(model, x, evaluation=task.evaluation, method=m)
                for m in saliency.METHODS}
        for i, file in enumerate(files[start:start + 32]):
            plots.saliency_panel_png(np.stack([x[i], x[i]]), np.stack([maps[m][i] for m in saliency.METHODS]),
                                     list(saliency.METHODS), folder / f"{file.stem}_saliency.png",
                                     title=file.name)
