"""Another system scored our way: its predictions on our test split, with the metrics, patient-
bootstrap intervals, bias measures and calibration of our own runs (``automl evaluate``).

The decision rule never comes from test: a system's own ``decision`` column; else a threshold
(or class weights) chosen on its validation predictions by the run's rule, as a search chooses
its own; else a number the system fixed (``--threshold 0.4``); else 0.5 (arg-max for classes),
and the summary's ``decision_rule`` says which.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from automl import records
from automl.evaluation import predictions as preds
from automl.evaluation.choose import decision_rule
from automl.evaluation.score import evaluate
from automl.settings import choices
from automl.settings.labels import POSITIVE_LABEL
from automl.settings.run_config import SearchConfig
from automl.tasks import check_config, task_data


@dataclass
class External:
    """One ``automl evaluate``: whose predictions, on which data and split, written where.

    Attributes:
        task: the task the predictions are for.
        predictions: the test split's predictions file (:mod:`automl.evaluation.predictions`).
        name: the system's name; the leaderboard row says ``external: NAME``.
        data: the data folder or manifest (None: as ``automl search`` resolves it).
        val_predictions: the system's predictions of our validation split, where its decision
            rule is chosen.
        seed, val_fraction: the split's (as the search's options), and the bootstrap seed.
        positive: the binary task's positive label (``--positive``).
        threshold: the rule a threshold is chosen by on validation, or a number the system fixed.
        out: where the run folder is made; ``run_dir``: an existing folder to write into instead
            (a peer's, holding its trials).
        command: the command line, for ``command.txt``.
        config_extra, summary_extra: recorded beside the configuration and the summary (a
            peer's tuner and trials).
    """

    task: str
    predictions: Path
    name: str
    data: str | None = None
    val_predictions: Path | None = None
    seed: int = choices.SEED
    val_fraction: float = choices.VAL_FRACTION
    positive: str = POSITIVE_LABEL
    threshold: str = choices.DEFAULT_THRESHOLD
    out: Path = Path(choices.DEFAULT_OUT)
    run_dir: Path | None = None
    command: str = "automl evaluate (called from Python)"
    config_extra: dict = field(default_factory=dict)
    summary_extra: dict = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: dict, *, command: str) -> "External":
        """The request of ``automl evaluate``'s parsed options (argparse's dests)."""
        paths = {k: Path(options[k]) if options.get(k) else None for k in ("predictions", "val_predictions")}
        fields = ("task", "name", "data", "seed", "val_fraction", "positive", "threshold")
        return cls(**paths, **{k: options[k] for k in fields}, out=Path(options["out"]), command=command)


def score_external(request: External, *, log=print) -> tuple[Path, dict]:
    """Check the predictions against our split, score them and write the run folder's
    ``config.json``, ``command.txt``, ``environment.json`` and ``scores.csv``; returns the folder
    and the summary (written by the caller after the figures, as a search's is).

    Raises:
        ValueError: an option, the data or a row of the predictions is bad (each row named);
            no run folder is made then.
    """
    config = check_config(SearchConfig(task=request.task, data=request.data, seed=request.seed,
                                       val_fraction=request.val_fraction, positive=request.positive,
                                       threshold=request.threshold, validation="plain"))
    task, data = task_data(config, log=log)
    root, parts = data.index.root, data.parts
    if not len(parts["test"]):
        raise ValueError(f"{data.config.data}: no test split to score the predictions on")
    where = {os.path.relpath(p, root): name for name, table in parts.items() for p in table.path}
    read = {name: preds.read_predictions(path, parts[name], evaluation=task.evaluation,
                                         class_names=task.class_names, root=root, split=name,
                                         elsewhere=where)
            for name, path in (("test", request.predictions), ("val", request.val_predictions)) if path}
    rule, source = _rule(task, parts, read, request.threshold)
    summary = _summary(request, data.config, task, data.index, rule, source,
                       counts={name: len(table) for name, table in parts.items()})
    rows = []
    for name in ("val", "test"):
        if name in read:
            table, found = parts[name], read[name]
            y = task.labels(table)
            summary[name] = evaluate(task, y, found.scores, rule, patients=table.patient.to_numpy(),
                                     seed=config.seed, decided=found.decided)
            summary[name].update(task.extra_metrics(table, y, found.scores, summary[name]))
            rows.append(records.score_rows(table, name, found.scores, root))
    if "val" in read:
        summary["objective"]["value"] = task.validation_quality(task.labels(parts["val"]), read["val"].scores)
    summary.update(request.summary_extra)
    run_dir = _run_dir(request, summary)
    pd.concat(rows).to_csv(run_dir / "scores.csv", index=False)
    return run_dir, summary


def _rule(task, parts: dict, read: dict, threshold: str) -> tuple[dict, str]:
    """The decision rule and where it came from (never from test)."""
    if read["test"].decided is not None:
        return {"threshold": None, "weights": None}, "decision column"
    if choices.operating_point(threshold) is None and not choices.is_named_threshold_rule(threshold):
        if task.evaluation == "multiclass":
            raise ValueError("--threshold: a number applies to the binary and anomaly tasks only")
        return {"threshold": float(threshold), "weights": None}, "threshold given"
    if "val" in read:
        return (decision_rule(task.evaluation, task.labels(parts["val"]), read["val"].scores,
                              threshold_rule=threshold), "chosen on validation predictions")
    if task.evaluation == "anomaly":
        raise ValueError("anomaly scores need a decision: a decision column, --val-predictions "
                         "(the threshold is chosen on them) or a numeric --threshold")
    return ({"threshold": None if task.evaluation == "multiclass" else 0.5, "weights": None},
            "arg-max (no validation predictions)" if task.evaluation == "multiclass"
            else "0.5 (no validation predictions)")


def _summary(request: External, config: SearchConfig, task, index, rule: dict, source: str, *,
             counts: dict) -> dict:
    """The summary of an external system: a run's, with ``external`` and ``decision_rule``."""
    objective = task.default_objective("plain")
    summary = records.new_summary(
        "", task.name, _config(request, config), env={}, objective=objective,
        direction=choices.objective_direction(objective), data_root=index.root,
        counts=counts, problems=index.problems)
    summary.update(external=request.name, decision_rule=source, classes=task.classes_record(),
                   threshold=rule["threshold"],
                   prior_weights=None if rule["weights"] is None else [float(w) for w in rule["weights"]])
    return summary


def _config(request: External, config: SearchConfig) -> dict:
    """What the run's ``config.json`` records: the split's options, the system and its files."""
    keep = ("task", "data", "seed", "val_fraction", "positive", "threshold", "validation", "image_size")
    values = {k: v for k, v in dataclasses.asdict(config).items() if k in keep}
    return {**values, "external": request.name, "tuner": f"external ({request.name})",
            "predictions": str(request.predictions),
            "val_predictions": str(request.val_predictions) if request.val_predictions else None,
            **request.config_extra}


def _run_dir(request: External, summary: dict) -> Path:
    """The run folder (new unless ``request.run_dir``) with its records, the summary's ids filled in."""
    run_dir = request.run_dir
    if run_dir is None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.name).strip("-") or "external"
        run_dir = Path(request.out) / records.new_run_id(f"{slug}-{summary['task']}")
        run_dir.mkdir(parents=True, exist_ok=False)
        (run_dir / "command.txt").write_text(request.command + "\n")
        records.write_json(run_dir / "config.json", summary["config"])
    summary["run_id"] = run_dir.name
    summary["env"] = records.run_environment(run_dir) if (run_dir / records.ENVIRONMENT_FILE).exists() \
        else records.write_environment(run_dir)
    return run_dir
