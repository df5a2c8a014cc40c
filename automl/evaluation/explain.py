"""The explain stage: where the scored model looked (saliency, classifiers) and what it saw (anomaly maps)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from automl.evaluation import metrics, saliency
from automl.evaluation.choose import Choice
from automl.evaluation.context import RunContext
from automl.evaluation.score import Scored

SUBTYPES = ("normal", "bacteria", "virus")


@dataclass
class Explanation:
    """What the explain stage found, for the summary and the report's figures.

    ``saliency``: the deletion test of a classifier's Grad-CAM (the summary's ``saliency``);
    ``panel``: test images by outcome with their maps and titles; ``reconstructions``: an
    anomaly model's inputs, predictions and anomaly maps of a few images per subtype, or
    ``reconstruction_error``, why they could not be computed (that figure then fails).
    """

    saliency: dict | None = None
    panel: dict | None = None
    reconstructions: dict | None = None
    reconstruction_error: Exception | None = None


def explain(ctx: RunContext, choice: Choice, scored: Scored) -> Explanation:
    """Saliency of a classifier's scored model, or the anomaly maps of an anomaly model;
    a failure costs only the explanation, never the scored results."""
    found = Explanation()
    if ctx.task.evaluation in ("binary", "multiclass"):
        try:
            found.saliency, found.panel = saliency_of(ctx, choice, scored)
        except Exception as error:  # a figure must not cost the scored results
            ctx.log(f"saliency failed: {type(error).__name__}: {error}")
    elif ctx.task.evaluation == "anomaly":
        try:
            found.reconstructions = reconstruction_examples(ctx, choice, scored)
        except Exception as error:  # reported as the figure's failure
            found.reconstruction_error = error
    return found


def saliency_of(ctx: RunContext, choice: Choice, scored: Scored) -> tuple[dict, dict | None]:
    """Saliency of the scored model: its faithfulness (the deletion test, on up to 64
    selection-set pneumonia images) and, with a test split, a panel of test images by
    outcome with their Grad-CAM maps (``images``, ``maps``, ``titles``)."""
    task, selection, seed = ctx.task, choice.selection, ctx.config["seed"]
    model, rule = choice.scored, choice.rule
    pneumonia = np.flatnonzero(selection.clean_labels != 0)[:64]
    result = saliency.faithfulness(model, task.model_inputs(selection.clean_images[pneumonia]),
                                   evaluation=task.evaluation, seed=seed)
    panel = None
    if scored.test_images is not None:
        table, test_scores = ctx.parts["test"], scored.test_scores
        predicted = metrics.predict_labels(test_scores, threshold=rule["threshold"], weights=rule["weights"])
        picks = saliency.panel_picks(task.labels(table), predicted)
        x = task.model_inputs(scored.test_images[[i for _, i in picks]])
        maps = saliency.gradcam(model, x, evaluation=task.evaluation)
        p = saliency.pneumonia_probability(np.atleast_2d(test_scores.T).T, task.evaluation)
        panel = {"images": x, "maps": maps,
                 "titles": [f"{kind}\n{table.subtype.iloc[i]}, P(pneumonia) {p[i]:.2f}" for kind, i in picks]}
    ctx.log(f"saliency (Grad-CAM) deletion area {result['saliency_area']:.3f} against random "
            f"{result['random_area']:.3f}: difference {result['difference']:.3f}")
    return result, panel


def reconstruction_examples(ctx: RunContext, choice: Choice, scored: Scored) -> dict:
    """Two images of each subtype (test images, or validation's without a test split) as the
    anomaly model sees them: ``inputs``, ``predictions`` (reconstruction, in-painting or
    defect map), ``maps`` (anomaly maps), ``labels`` (subtype and score) and ``defect``
    (whether the predictions are defect maps)."""
    split = "test" if scored.test_images is not None else "val"
    images = scored.test_images if split == "test" else choice.selection.clean_images
    hparams = choice.summary["best_hparams"]
    frame = scored.rows[scored.rows.split == split].reset_index(drop=True)
    picks = [i for kind in SUBTYPES for i in frame.index[frame.subtype == kind][:2]]
    x, prediction, maps = ctx.task.maps(choice.model, images[picks], hparams)
    labels = [f"{s} ({v:.3g})" for s, v in zip(frame.subtype[picks], frame.score[picks])]
    return {"inputs": x, "predictions": prediction, "maps": maps, "labels": labels,
            "defect": hparams.get("family") == "defect"}
