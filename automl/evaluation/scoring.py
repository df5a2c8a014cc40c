"""Selection and scoring: best trial, ensemble, decision rule on the selection set, then test once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from automl import records
from automl.data.pipeline import load_images
from automl.data.shift import SelectionSet
from automl.evaluation import decisions, metrics, saliency
from automl.records.trials import COMPLETED, FAILED, PRUNED, config_key, trial_image_size
from automl.report import plots
from automl.report.model_card import write_model_card
from automl.settings import choices
from automl.tasks.base import Task


@dataclass
class RunContext:
    """One finished search (or peer) as selection and scoring see it.

    ``config`` is the run's recorded configuration (``config.json``); scoring reads its
    ``image_size``, ``seed``, ``threshold`` and ``ensemble``. ``load_model`` turns a
    trial record into its trained model. ``selection`` is where every choice is made;
    ``parts["test"]`` is read once, after all of them.
    """

    run_dir: Path
    task: Task
    config: dict
    data_root: Path
    data_problems: list
    parts: dict[str, pd.DataFrame]
    selection: SelectionSet
    objective: str
    load_model: Callable[[dict], keras.Model]
    search_seconds: float = 0.0
    summary_extra: dict = field(default_factory=dict)  # e.g. {"peer": "autokeras"}
    # Rank only these trials: a peer system whose own search already chose its model
    # (none: no model to score). None: every recorded trial.
    trial_ids: tuple[str, ...] | None = None
    log: Callable = print
    # The cross-validated refit (automl.refit.crossfit.RefitResult): when given, every choice is made
    # on its out-of-fold scores and the scored model averages its fold models.
    refit: object | None = None

    @property
    def direction(self) -> str:
        return choices.objective_direction(self.objective)


def ranked_trials(trials: list[dict], objective: str, *, image_size: int | None = None) -> list[dict]:
    """Completed trials that report ``objective``, best first (the first recorded on ties).

    With ``image_size``, only trials trained at that size: under multi-fidelity the
    screened trials rank configurations, the full-size ones are what can be chosen.
    Pruned and failed trials are never chosen.
    """
    sign = -1.0 if choices.objective_direction(objective) == "max" else 1.0
    usable = [t for t in trials if t.get("status") == COMPLETED and objective in t.get("metrics", {})
              and (image_size is None or trial_image_size(t, image_size) == image_size)]
    return sorted(usable, key=lambda t: sign * t["metrics"][objective])


def trial_counts(trials: list[dict], image_size: int) -> dict:
    """How many trials completed at full size, were screened (trained at a smaller size,
    to the end or until pruned), were pruned, and failed: the summary's ``trials_*`` fields."""
    full = [t for t in trials if t.get("status") == COMPLETED
            and trial_image_size(t, image_size) == image_size]
    screened = [t for t in trials if t.get("status") in (COMPLETED, PRUNED)
                and trial_image_size(t, image_size) != image_size]
    return {"trials_completed": len(full), "trials_screened": len(screened),
            "trials_pruned": sum(t.get("status") == PRUNED for t in trials),
            "trials_failed": sum(t.get("status") == FAILED for t in trials)}


def within_latency(ranked: list[dict], cap: float) -> list[dict]:
    """The trials (in their order) whose CPU latency is at most ``cap`` ms per image: a user
    who needs a small model gets the best one under the cap, nothing slower, nothing unmeasured."""
    return [t for t in ranked if t.get("latency_ms") is not None and t["latency_ms"] <= cap]


def distinct_top(ranked: list[dict], k: int) -> list[dict]:
    """The ``k`` best of ``ranked`` trials with distinct hyperparameters (Hyperband continues
    a trial under a new id; the copy would add nothing to an ensemble)."""
    chosen, seen = [], set()
    for trial in ranked:
        key = config_key(trial["hparams"])
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
    return chosen[:k]


def decision_rule(evaluation: str, y: np.ndarray, scores: np.ndarray, *,
                  threshold_rule: str | float = choices.DEFAULT_THRESHOLD) -> dict:
    """How scores become labels, chosen on the selection set: ``threshold`` (binary,
    anomaly; see :func:`automl.evaluation.decisions.choose_threshold`) or per-class ``weights``
    (multiclass; :func:`automl.evaluation.decisions.choose_prior_correction`). The one place this
    choice is written: searches, peers and the KNN benchmark all call it."""
    if evaluation == "multiclass":
        return {"threshold": None, "weights": decisions.choose_prior_correction(y, scores)}
    if evaluation == "binary" and len(np.unique(y)) < 2 and choices.is_named_threshold_rule(threshold_rule):
        # One class only: nothing to balance (an operating point on the class present could be
        # met, but by a threshold that says nothing about the other class).
        return {"threshold": 0.5, "weights": None}
    return {"threshold": decisions.choose_threshold(y, scores, rule=threshold_rule), "weights": None}


def evaluate(task: Task, y: np.ndarray, scores: np.ndarray, rule: dict, *, patients: np.ndarray,
             seed: int) -> dict:
    """:func:`automl.evaluation.metrics.evaluate` of one split under the chosen decision ``rule``; its
    intervals resample ``patients`` (one per image), not images."""
    return metrics.evaluate(y, scores, kind=task.evaluation, threshold=rule["threshold"],
                            weights=rule["weights"], class_names=list(task.class_names),
                            groups=patients, seed=seed)


def choose_ensemble(ctx: RunContext, ranked: list[dict], best_model: keras.Model,
                    best_scores: np.ndarray) -> tuple[list[tuple[dict, keras.Model]], np.ndarray, dict]:
    """Average the top-k distinct trials' scores if that is better *on the selection set*.

    Averaging models that fit validation equally well smooths their individual
    over-confidence, which is what hurts on the shifted test split.

    Returns:
        The members (trial, model), their scores on the selection set, and the record.
    """
    best = ranked[0]
    others = [(t, ctx.load_model(t)) for t in distinct_top(ranked, ctx.config["ensemble"])
              if t["trial_id"] != best["trial_id"]]
    members = [(best, best_model), *others]
    images, y = ctx.selection.images, ctx.selection.labels
    averaged = np.mean([best_scores] + [ctx.task.scores(m, images, hparams=t["hparams"])
                                        for t, m in others], axis=0)
    single = ctx.task.validation_quality(y, best_scores)
    combined = ctx.task.validation_quality(y, averaged)
    used = len(members) > 1 and combined > single
    record = {"trials": [t["trial_id"] for t, _ in members], "used": used,
              "val_quality_single": single, "val_quality_ensemble": combined,
              "quality": ctx.task.objective.removeprefix("val_")}
    return (members, averaged, record) if used else (members[:1], best_scores, record)


def scored_model(models: list[keras.Model]) -> keras.Model:
    """One Keras model for what is scored: the single best trial's model, or the average of
    an ensemble's outputs, its members (``member_0`` the best) nested inside, each with its
    own preprocessing layers. Takes the same inputs as each member."""
    if len(models) == 1:
        return models[0]
    inputs = keras.Input(tuple(models[0].inputs[0].shape[1:]), name="image")
    # Wrapped, so that members built with the same layer and model names stay distinct.
    outputs = [keras.Sequential([m], name=f"member_{i}")(inputs) for i, m in enumerate(models)]
    return keras.Model(inputs, keras.layers.Average(name="ensemble_average", dtype="float32")(outputs),
                       name=f"{models[0].name}_ensemble_of_{len(models)}")


def embedding_model(model: keras.Model, member: int = 0) -> keras.Model:
    """Images -> the ``embedding`` layer of ``model``, or of its first nested model that has
    one: by default the best member (``member_0``) of an ensemble from :func:`scored_model`,
    inside its test-time augmentation wrapper if any; ``member`` picks another (after a
    refit, member ``f`` of the best configuration is its fold-``f`` model)."""
    nested = next((layer for layer in model.layers if layer.name == f"member_{member}"), None)
    if member and nested is None:
        raise ValueError(f"{model.name}: no ensemble member {member}")
    found = _with_embedding(nested or model)
    if found is None:
        raise ValueError(f"{model.name}: no layer named 'embedding' in the model or its members")
    return keras.Model(found.inputs, found.get_layer("embedding").output)


def _with_embedding(model: keras.Model) -> keras.Model | None:
    if any(layer.name == "embedding" for layer in model.layers):
        return model
    for layer in model.layers:
        if isinstance(layer, keras.Model) and (found := _with_embedding(layer)) is not None:
            return found
    return None


def explain(ctx: RunContext, model: keras.Model, rule: dict, test: tuple | None, summary: dict) -> dict:
    """Saliency of the scored model: its faithfulness (the deletion test, on up to 64
    validation pneumonia images) and, given ``test`` = (images, scores), a panel of test
    images by outcome with Grad-CAM overlays."""
    task, selection, seed = ctx.task, ctx.selection, ctx.config["seed"]
    pneumonia = np.flatnonzero(selection.clean_labels != 0)[:64]
    result = saliency.faithfulness(model, task.model_inputs(selection.clean_images[pneumonia]),
                                   evaluation=task.evaluation, seed=seed)
    if test is not None:
        test_images, test_scores = test
        table = ctx.parts["test"]
        predicted = metrics.predict_labels(test_scores, threshold=rule["threshold"], weights=rule["weights"])
        picks = saliency.panel_picks(task.labels(table), predicted)
        x = task.model_inputs(test_images[[i for _, i in picks]])
        maps = saliency.gradcam(model, x, evaluation=task.evaluation)
        p = saliency.pneumonia_probability(np.atleast_2d(test_scores.T).T, task.evaluation)
        titles = [f"{kind}\n{table.subtype.iloc[i]}, P(pneumonia) {p[i]:.2f}" for kind, i in picks]
        plots.saliency_panel_png(x, maps, titles, ctx.run_dir / "saliency_panel.png",
                                 title=f"{summary['run_id']}: Grad-CAM on test images (red = evidence "
                                       "for pneumonia)")
    ctx.log(f"saliency (Grad-CAM) deletion area {result['saliency_area']:.3f} against random "
            f"{result['random_area']:.3f}: difference {result['difference']:.3f}")
    return result


def score_run(ctx: RunContext) -> dict:
    """Pick the best recorded trial, then the ensemble and the decision rule on the
    selection set; score validation, the shifted selection set and, once, the official
    test split; write ``best_model.keras``, ``scores.csv``, ``summary.json`` and the plots.

    Returns:
        The summary; without a completed trial it has no results (and is written so).
    """
    task, config = ctx.task, ctx.config
    trials = records.read_jsonl(ctx.run_dir / "trials.jsonl")
    usable = ranked_trials(trials, ctx.objective, image_size=config["image_size"])
    ranked = [t for t in usable if ctx.trial_ids is None or str(t["trial_id"]) in ctx.trial_ids]
    cap = config.get("max_latency_ms")
    if cap is not None:
        ranked = within_latency(ranked, cap)
        if not ranked:
            ctx.log(f"no completed trial scores an image in {cap:g} ms or less")
    summary = records.new_summary(
        ctx.run_dir.name, task.name, config, env=records.run_environment(ctx.run_dir),
        objective=ctx.objective, direction=ctx.direction, data_root=ctx.data_root,
        counts={k: len(v) for k, v in ctx.parts.items()}, problems=ctx.data_problems)
    summary.update(ctx.summary_extra, **trial_counts(trials, config["image_size"]),
                   search_seconds=round(ctx.search_seconds, 2))
    if not ranked:
        records.write_json(ctx.run_dir / "summary.json", summary)
        return summary
    best = ranked[0]
    summary.update(best_trial=best["trial_id"], best_hparams=best["hparams"],
                   best_latency_ms=best.get("latency_ms"), best_params=best.get("params"))
    summary["objective"]["value"] = best["metrics"][ctx.objective]
    model = ctx.load_model(best)

    # Every choice below (ensemble, threshold, class weights) is made on the selection set:
    # validation (and its re-acquisitions), or after a refit the out-of-fold scores of the
    # whole train + validation pool.
    if ctx.refit is not None:
        from automl.refit import crossfit

        ctx = dataclasses.replace(ctx, selection=ctx.refit.selection,
                                  parts={**ctx.parts, "val": ctx.refit.pool})
        members, scores, summary["refit"] = crossfit.choose(task, ctx.refit, log=ctx.log)
        summary["val_source"] = "out-of-fold"
    else:
        scores = task.scores(model, ctx.selection.images, hparams=best["hparams"])
        members = [(best, model)]
        if config.get("ensemble", 1) > 1 and task.evaluation != "anomaly":
            members, scores, summary["ensemble"] = choose_ensemble(ctx, ranked, model, scores)
    selection = ctx.selection
    # The file a user takes away is the model the test numbers describe (for the anomaly
    # task: the trained model; its score also needs the run's score choice and references).
    scored = scored_model([m for _, m in members])
    scored.save(ctx.run_dir / "best_model.keras")
    rule = decision_rule(task.evaluation, selection.labels, scores,
                         threshold_rule=config.get("threshold", choices.DEFAULT_THRESHOLD))
    summary["threshold"] = rule["threshold"]
    summary["prior_weights"] = None if rule["weights"] is None else [float(w) for w in rule["weights"]]
    seed = config["seed"]
    val_scores = scores[:selection.n_clean]
    val_patients = ctx.parts["val"].patient.to_numpy()
    summary["val"] = evaluate(task, selection.clean_labels, val_scores, rule, patients=val_patients,
                              seed=seed)
    if selection.shifted:
        # A re-acquired image belongs to its original's patient.
        pooled_patients = np.tile(val_patients, len(selection.images) // max(selection.n_clean, 1))
        summary["val_shift"] = evaluate(task, selection.labels, scores, rule, patients=pooled_patients,
                                        seed=seed)
    # After a refit these rows are every train + validation image's out-of-fold score, not a
    # validation split: they are written as such.
    val_split = records.SCORES_OUT_OF_FOLD if ctx.refit is not None else "val"
    rows = [records.score_rows(ctx.parts["val"], val_split, val_scores, ctx.data_root)]
    test_table, test_images, test = ctx.parts["test"], None, None
    if len(test_table):
        # The only place the official test split is read: after every choice is made.
        test_images = load_images(test_table.path, config["image_size"])
        y_test = task.labels(test_table)
        test_scores = np.mean([task.scores(m, test_images, hparams=t["hparams"]) for t, m in members],
                              axis=0)
        summary["test"] = evaluate(task, y_test, test_scores, rule,
                                   patients=test_table.patient.to_numpy(), seed=seed)
        summary["test"].update(task.extra_metrics(test_table, y_test, test_scores, summary["test"]))
        test = (test_images, test_scores)
        rows.append(records.score_rows(test_table, "test", test_scores, ctx.data_root))
    pd.concat(rows).to_csv(ctx.run_dir / "scores.csv", index=False)
    try:
        plots.run_plots(ctx.run_dir, summary, best, task, model=model,
                        images={"val": selection.clean_images, "test": test_images})
        size = config["image_size"]
        full_size = [t for t in trials if trial_image_size(t, size) == size]
        plots.pareto_png(full_size, ctx.objective, best["trial_id"], ctx.run_dir / "pareto.png",
                         cap=cap)
    except Exception as error:  # a figure must not cost the scored results
        summary["plot_error"] = records.short_error(f"{type(error).__name__}: {error}")
        ctx.log(f"plots failed: {summary['plot_error']}")
    if task.evaluation in ("binary", "multiclass"):
        try:
            summary["saliency"] = explain(ctx, scored, rule, test, summary)
        except Exception as error:  # a figure must not cost the scored results
            ctx.log(f"saliency failed: {type(error).__name__}: {error}")
    # Written last: a summary.json means the run is finished, plots included.
    records.write_json(ctx.run_dir / "summary.json", summary)
    try:
        write_model_card(ctx.run_dir)
    except Exception as error:  # the card is a reading of the records, never worth the run
        ctx.log(f"model card failed: {type(error).__name__}: {error}")
    headline = summary["test"] or summary["val"]
    auc = headline["auc"]
    ctx.log(f"best trial {best['trial_id']} ({ctx.objective} {summary['objective']['value']:.4f}); "
            f"{'test' if summary['test'] else 'val'} accuracy {headline['accuracy']:.4f}, "
            f"AUC {auc if auc is None else round(auc, 4)}, "
            f"|sens-spec| {headline['bias']['sens_spec_gap']:.4f} -> {ctx.run_dir}")
    if warning := metrics.chance_level_warning(summary["objective"]):
        ctx.log(f"WARNING: {warning}")
    return summary
