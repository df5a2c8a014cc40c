"""The score stage: the chosen model on validation, the shifted selection set and, once, the test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from automl import records
from automl.data.pipeline import load_images
from automl.evaluation import metrics
from automl.evaluation.choose import Choice
from automl.evaluation.context import RunContext
from automl.tasks.base import Task


@dataclass
class Scored:
    """What the score stage measured beside the summary's ``val``, ``val_shift`` and ``test``:
    the rows it wrote to ``scores.csv`` and the test split's images and scores (None
    without a test split)."""

    rows: pd.DataFrame
    test_images: np.ndarray | None = None
    test_scores: np.ndarray | None = None


def evaluate(task: Task, y: np.ndarray, scores: np.ndarray, rule: dict, *, patients: np.ndarray,
             seed: int, decided: np.ndarray | None = None) -> dict:
    """:func:`automl.evaluation.metrics.evaluate` of one split under the chosen decision ``rule``
    (or a system's own ``decided`` classes); its intervals resample ``patients`` (one per image),
    not images."""
    return metrics.evaluate(y, scores, kind=task.evaluation, threshold=rule["threshold"],
                            weights=rule["weights"], class_names=list(task.class_names),
                            groups=patients, seed=seed, y_pred=decided)


def score(ctx: RunContext, choice: Choice) -> Scored:
    """Score the chosen model under the chosen rule: the summary's ``val`` (the clean selection
    images), ``val_shift`` (pooled with their re-acquisitions, under shift validation) and
    ``test``, the official test split read here for the first and only time, after every
    choice. Writes ``best_model.keras`` and ``scores.csv``."""
    task, summary, selection, rule = ctx.task, choice.summary, choice.selection, choice.rule
    # The file a user takes away is the model the test numbers describe (for the anomaly
    # task: the trained model; its score also needs the run's score choice and references).
    choice.scored.save(ctx.run_dir / "best_model.keras")
    seed = ctx.config["seed"]
    val_scores = choice.scores[:selection.n_clean]
    val_patients = choice.val_table.patient.to_numpy()
    summary["val"] = evaluate(task, selection.clean_labels, val_scores, rule, patients=val_patients,
                              seed=seed)
    if selection.shifted:
        # A re-acquired image belongs to its original's patient.
        pooled_patients = np.tile(val_patients, len(selection.images) // max(selection.n_clean, 1))
        summary["val_shift"] = evaluate(task, selection.labels, choice.scores, rule,
                                        patients=pooled_patients, seed=seed)
    # After a refit these rows are every train + validation image's out-of-fold score, not a
    # validation split: they are written as such.
    val_split = records.SCORES_OUT_OF_FOLD if ctx.refit is not None else "val"
    rows = [records.score_rows(choice.val_table, val_split, val_scores, ctx.data_root)]
    test_table, scored = ctx.parts["test"], Scored(rows=pd.DataFrame())
    if len(test_table):
        scored.test_images = load_images(test_table.path, ctx.config["image_size"])
        y_test = task.labels(test_table)
        scored.test_scores = np.mean([task.scores(m, scored.test_images, hparams=t["hparams"])
                                      for t, m in choice.members], axis=0)
        summary["test"] = evaluate(task, y_test, scored.test_scores, rule,
                                   patients=test_table.patient.to_numpy(), seed=seed)
        summary["test"].update(task.extra_metrics(test_table, y_test, scored.test_scores, summary["test"]))
        rows.append(records.score_rows(test_table, "test", scored.test_scores, ctx.data_root))
    scored.rows = pd.concat(rows)
    scored.rows.to_csv(ctx.run_dir / "scores.csv", index=False)
    return scored
