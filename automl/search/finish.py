"""After the search: choose, score and explain on the recorded trials, then hand the results to the report;
and the same last steps for another system's predictions (``automl evaluate``)."""

from __future__ import annotations

from automl import records
from automl.evaluation import metrics
from automl.evaluation.choose import choose, full_size_trials
from automl.evaluation.context import RunContext
from automl.evaluation.explain import Explanation, explain
from automl.evaluation.external import External, score_external
from automl.evaluation.score import score
from automl.report.run_outputs import write_card, write_figures


def finish_run(ctx: RunContext) -> dict:
    """Pick the best recorded trial, then the ensemble and the decision rule on the
    selection set; score validation, the shifted selection set and, once, the official
    test split; explain the scored model; write ``best_model.keras``, ``scores.csv``, the
    plots, ``summary.json`` and ``MODEL_CARD.md``.

    Returns:
        The summary; without a completed trial it has no results (and is written so).
    """
    choice = choose(ctx)
    summary = choice.summary
    if choice.best is None:
        records.write_json(ctx.run_dir / "summary.json", summary)
        return summary
    scored = score(ctx, choice)
    explanation = explain(ctx, choice, scored)
    write_figures(ctx.run_dir, summary, best=choice.best,
                  trials=full_size_trials(choice.trials, ctx.config["image_size"]), objective=ctx.objective,
                  cap=ctx.config.get("max_latency_ms"), explanation=explanation, log=ctx.log)
    # Written last: a summary.json means the run is finished, plots included.
    records.write_json(ctx.run_dir / "summary.json", summary)
    write_card(ctx.run_dir, log=ctx.log)
    _log_headline(ctx, summary)
    return summary


def _log_headline(ctx: RunContext, summary: dict) -> None:
    """One line: the chosen trial, its objective and the headline split's accuracy, AUC and
    |sensitivity − specificity|; and a warning for a model at chance."""
    headline = summary["test"] or summary["val"]
    auc = headline["auc"]
    ctx.log(f"best trial {summary['best_trial']} ({ctx.objective} {summary['objective']['value']:.4f}); "
            f"{'test' if summary['test'] else 'val'} accuracy {headline['accuracy']:.4f}, "
            f"AUC {auc if auc is None else round(auc, 4)}, "
            f"|sens-spec| {headline['bias']['sens_spec_gap']:.4f} -> {ctx.run_dir}")
    if warning := metrics.chance_level_warning(summary["objective"]):
        ctx.log(f"WARNING: {warning}")


def finish_external(request: External, *, best: dict | None = None, trials: list[dict] = (),
                    log=print) -> dict:
    """``automl evaluate``: score another system's predictions (:func:`automl.evaluation.external.
    score_external`), then write its figures, ``summary.json`` and ``MODEL_CARD.md`` as a search's;
    ``best`` and ``trials``: a peer's own trial records, if it has them. Returns the summary."""
    run_dir, summary = score_external(request, log=log)
    write_figures(run_dir, summary, best=best or {"trial_id": None}, trials=list(trials),
                  objective=summary["objective"]["name"], cap=None, explanation=Explanation(), log=log)
    records.write_json(run_dir / "summary.json", summary)
    write_card(run_dir, log=log)
    test = summary["test"]
    log(f"{request.name}: test accuracy {test['accuracy']:.4f}, AUC {test['auc']}, "
        f"|sens-spec| {test['bias']['sens_spec_gap']:.4f}, decision {summary['decision_rule']} -> {run_dir}")
    return summary
