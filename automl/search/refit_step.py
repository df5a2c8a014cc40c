"""The cross-validated refit as a step of the search: how many folds, the time the search keeps
for it, whether a resumed run had planned it, and the call into :mod:`automl.refit.run` once
the search has ended."""

from __future__ import annotations

from pathlib import Path

from automl import records
from automl.evaluation import choose
from automl.refit import run as refit_run
from automl.search.budget import Budget
from automl.settings import choices
from automl.settings.run_config import SearchConfig
from automl.tasks import objective_name
from automl.tasks.base import SearchSpace, Task


def refit_folds(config: SearchConfig, task: Task) -> int:
    """The folds of the refit after the search (0: none; the anomaly task has none)."""
    return choices.refit_folds(config.refit) if task.evaluation != "anomaly" else 0


def refit_reserve(config: SearchConfig, run_dir: Path, folds: int, parts: dict, *, amount: float,
                  key: str = "seconds") -> float:
    """What to keep free for the refit of the best configurations so far, in the budget's unit
    (``key``: the trial records' ``seconds`` or ``compute``; :func:`automl.refit.run.estimate`;
    0 when not even two folds fit in ``amount``)."""
    objective = objective_name(config)
    return refit_run.estimate(config, refit_top(config, run_dir, objective), objective=objective,
                              folds=folds, pool_size=len(parts["train"]) + len(parts["val"]),
                              train_size=len(parts["train"]), amount=amount, key=key)


def refit_planned(run_dir: Path, resume: str | Path | None, folds: int) -> bool:
    """Whether a resumed run had planned its refit: its search had ended. Searching again would start
    trials in the time kept for the refit, and could make best a trial the refit does not retrain."""
    return bool(resume and folds and refit_run.is_planned(run_dir))


def refit_after_search(config: SearchConfig, run_dir: Path, task: Task, space: SearchSpace, data: dict,
                       objective: str, folds: int, budget: Budget, *, log=print):
    """The refit once the search has ended (:func:`automl.refit.run.run_refit`): ``(refit, None)``,
    or ``(None, why it was skipped or rejected)``; ``(None, None)`` without a refit."""
    refit_result, refit_skipped = None, None
    if folds:
        # The refit may overrun the budget as much as a trial running at its end may: what was
        # kept is an estimate made while searching.
        refit_result = refit_run.run_refit(config, run_dir, task, space, data[config.image_size],
                                           top=refit_top(config, run_dir, objective), objective=objective,
                                           folds=folds, left=budget.left_for_refit(), key=budget.key, log=log)
        if isinstance(refit_result, dict):
            refit_result, refit_skipped = None, refit_result
    return refit_result, refit_skipped


def refit_top(config: SearchConfig, run_dir: Path, objective: str) -> list[dict]:
    """The best distinct full-size trials so far, as many as the ensemble would take (within
    the latency cap, if any): what the refit chooses its configurations from
    (:func:`automl.refit.plan.candidates`)."""
    ranked = choose.ranked_trials(records.read_jsonl(run_dir / "trials.jsonl"), objective,
                                  image_size=config.image_size)
    if config.max_latency_ms is not None:
        ranked = choose.within_latency(ranked, config.max_latency_ms)
    return choose.distinct_top(ranked, config.ensemble or 1)
