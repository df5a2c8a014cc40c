"""The choose stage: the best trial, the ensemble or refit and the decision rule, all on the selection set."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from automl import records
from automl.data.shift import SelectionSet
from automl.evaluation import decisions
from automl.evaluation.context import RunContext
from automl.evaluation.scored_model import scored_model
from automl.records.trials import COMPLETED, FAILED, PRUNED, config_key, trial_image_size
from automl.settings import choices


@dataclass
class Choice:
    """What the choose stage decided, every part of it on the selection set.

    ``summary`` is ``summary.json`` so far: the run's configuration and trial counts and, when
    a trial could be chosen, the best trial, the ensemble or refit record and the decision
    rule. Without a usable trial ``best`` is None and nothing below it is set.
    """

    summary: dict
    trials: list[dict]  # every recorded trial
    best: dict | None = None
    model: keras.Model | None = None  # the best trial's own model
    members: list[tuple[dict, keras.Model]] = field(default_factory=list)  # (trial, model), best first
    scored: keras.Model | None = None  # :func:`scored_model` of the members: what is saved and scored
    scores: np.ndarray | None = None  # its selection-set scores: clean images, then re-acquisitions
    rule: dict | None = None  # :func:`decision_rule`
    selection: SelectionSet | None = None  # validation's, or after a refit the pool's out-of-fold set
    val_table: pd.DataFrame | None = None  # the rows of ``selection``'s clean images


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


def full_size_trials(trials: list[dict], image_size: int) -> list[dict]:
    """The trials trained at the run's ``image_size`` (every one without screening)."""
    return [t for t in trials if trial_image_size(t, image_size) == image_size]


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


def choose(ctx: RunContext) -> Choice:
    """Pick the best recorded trial, then the ensemble (or, after a refit, the fold models'
    average) and the decision rule on the selection set: validation (and its
    re-acquisitions), or after a refit the out-of-fold scores of the whole train +
    validation pool. Reads ``trials.jsonl``; loads models; writes nothing."""
    trials = records.read_jsonl(ctx.run_dir / "trials.jsonl")
    choice = Choice(summary=_started_summary(ctx, trials), trials=trials)
    ranked = _candidates(ctx, trials)
    if not ranked:
        return choice
    summary, best = choice.summary, ranked[0]
    summary.update(best_trial=best["trial_id"], best_hparams=best["hparams"],
                   best_latency_ms=best.get("latency_ms"), best_params=best.get("params"))
    summary["objective"]["value"] = best["metrics"][ctx.objective]
    choice.best, choice.model = best, ctx.load_model(best)
    choice.selection, choice.val_table = ctx.selection, ctx.parts["val"]
    if ctx.refit is not None:
        from automl.refit import choose as refit_choice

        choice.selection, choice.val_table = ctx.refit.selection, ctx.refit.pool
        choice.members, choice.scores, summary["refit"] = refit_choice.choose(ctx.task, ctx.refit,
                                                                              log=ctx.log)
        summary["val_source"] = "out-of-fold"
    else:
        choice.scores = ctx.task.scores(choice.model, ctx.selection.images, hparams=best["hparams"])
        choice.members = [(best, choice.model)]
        if ctx.config.get("ensemble", 1) > 1 and ctx.task.evaluation != "anomaly":
            choice.members, choice.scores, summary["ensemble"] = choose_ensemble(
                ctx, ranked, choice.model, choice.scores)
    choice.scored = scored_model([m for _, m in choice.members])
    choice.rule = decision_rule(ctx.task.evaluation, choice.selection.labels, choice.scores,
                                threshold_rule=ctx.config.get("threshold", choices.DEFAULT_THRESHOLD))
    summary["threshold"] = choice.rule["threshold"]
    summary["prior_weights"] = (None if choice.rule["weights"] is None
                                else [float(w) for w in choice.rule["weights"]])
    return choice


def _candidates(ctx: RunContext, trials: list[dict]) -> list[dict]:
    """The trials that may be chosen, best first: full size, among ``ctx.trial_ids`` if
    given, and within the run's latency cap if it has one."""
    usable = ranked_trials(trials, ctx.objective, image_size=ctx.config["image_size"])
    ranked = [t for t in usable if ctx.trial_ids is None or str(t["trial_id"]) in ctx.trial_ids]
    cap = ctx.config.get("max_latency_ms")
    if cap is not None:
        ranked = within_latency(ranked, cap)
        if not ranked:
            ctx.log(f"no completed trial scores an image in {cap:g} ms or less")
    return ranked


def _started_summary(ctx: RunContext, trials: list[dict]) -> dict:
    """``summary.json`` before any choice: the run's configuration, data and trial counts."""
    config = ctx.config
    summary = records.new_summary(
        ctx.run_dir.name, ctx.task.name, config, env=records.run_environment(ctx.run_dir),
        objective=ctx.objective, direction=ctx.direction, data_root=ctx.data_root,
        counts={k: len(v) for k, v in ctx.parts.items()}, problems=ctx.data_problems)
    summary.update(ctx.summary_extra, **trial_counts(trials, config["image_size"]),
                   search_seconds=round(ctx.search_seconds, 2), classes=ctx.task.classes_record())
    return summary
