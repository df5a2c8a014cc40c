"""The cross-validated refit as a search runs it: plan within the time left (or resume the plan),
retrain on the folds, drop what failed.

The search hands it its best distinct trials (``top``, best first, as many as its ensemble
would take); ranking trials is the search's, what to refit of them is decided here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from automl import records
from automl.data import shift
from automl.refit import fold_models, plan
from automl.refit.fold_models import RefitResult
from automl.settings import choices
from automl.settings.run_config import SearchConfig
from automl.tasks.base import SearchSpace, SplitData, Task

PLAN_FILE = "plan.json"  # the refit's configurations and folds, kept for a resumed run


def is_planned(run_dir: Path) -> bool:
    """Whether the run planned its refit: the search had ended, and a resumed run refits."""
    return (run_dir / "refit" / PLAN_FILE).exists()


def refit_cost(config: SearchConfig, objective: str, pool_size: int, train_size: int,
               key: str = "seconds") -> plan.Cost:
    """``cost(trials, k)``: the estimated cost of refitting ``trials`` on ``k`` folds, priced in
    the trial records' ``key`` (``seconds``, or ``compute`` under a compute budget)."""
    copies = 1 + shift.COPIES if config.validation == "shift" else 1
    return lambda trials, k: plan.estimate_cost(
        trials, k, objective=objective, direction=choices.objective_direction(objective), pool_size=pool_size,
        train_size=train_size, scored_copies=copies, key=key)


def estimate(config: SearchConfig, top: list[dict], *, objective: str, folds: int, pool_size: int,
             train_size: int, amount: float, key: str = "seconds") -> float:
    """What to keep free for the refit of today's best configurations (``top``): what the
    largest plan that fits in ``amount`` costs (0 when none fits: the refit will be skipped),
    priced in the trial records' ``key``."""
    cost = refit_cost(config, objective, pool_size, train_size, key)
    trials, k = plan.plan(plan.candidates(top, objective), folds, cost, amount)
    return cost(trials, k) if trials else 0.0


def run_refit(config: SearchConfig, run_dir: Path, task: Task, space: SearchSpace,
              data: tuple[SplitData, SplitData], *, top: list[dict], objective: str, folds: int,
              left: float | None, key: str = "seconds", log=print) -> RefitResult | dict | None:
    """Retrain the best configurations on up to ``folds`` folds of train + validation, as
    many folds, then configurations, as what is ``left`` of the budget allows (priced in the
    trial records' ``key``: ``seconds``, or ``compute`` under a compute budget). Returns the refit
    (:class:`automl.refit.fold_models.RefitResult`), or why it was skipped or rejected (a dict): not
    even two folds of any candidate fit the time left, or every configuration has a failed fold
    model; None without candidates. When two folds of the best do not fit but a lesser
    candidate's do, that one is refitted (``plan["passed_over"]`` names the trials above it)."""
    train, val = data
    candidates = plan.candidates(top, objective)
    if not candidates:
        return None
    pool = pd.concat([train.table, val.table], ignore_index=True)
    cost = refit_cost(config, objective, len(pool), len(train.table), key)
    store = run_dir / "refit"
    planned = records.read_json(store / PLAN_FILE) if is_planned(run_dir) else None
    if planned:
        # A resumed run refits what it had planned, keeping the fold models it finished.
        by_id = {t["trial_id"]: t for t in records.read_jsonl(run_dir / "trials.jsonl")}
        trials, k = [by_id[i] for i in planned["trials"]], planned["folds"]
        passed_over = planned.get("passed_over", [])
    else:
        trials, k = plan.plan(candidates, folds, cost, left)
        if not trials:
            return _skipped(candidates[0], cost, folds, left, key, log)
        passed_over = _new_plan(store, candidates, trials, k, cost, left, key, log)
    log(f"refit: {len(trials)} configuration(s) x {k} folds of {len(pool)} train + validation images, "
        f"about {choices.budget_text(cost(trials, k), key)}"
        + (f" ({choices.budget_text(max(left, 0), key)} left in the budget)" if left is not None else ""))
    result = fold_models.cross_fit(
        task, space, pool, np.concatenate([train.images, val.images]), trials, k, objective=objective,
        direction=choices.objective_direction(objective), shifted=config.validation == "shift",
        seed=config.seed, store=store, log=log)
    result.plan = {"folds_requested": folds, f"{key}_left": left,
                   f"{key}_estimated": round(cost(trials, k), 2),
                   **({"passed_over": passed_over} if passed_over else {})}
    return checked_refit(task, result, log=log)


def _skipped(best: dict, cost: plan.Cost, folds: int, left: float, key: str, log) -> dict:
    """Why the refit is skipped: not even two folds of any candidate fit what is ``left``."""
    needed = cost([best], 2)
    log(f"refit skipped: two folds of trial {best['trial_id']} need about "
        f"{choices.budget_text(needed, key)}, {choices.budget_text(max(left, 0), key)} are left in the "
        f"budget; choices made on validation")
    return {"folds_requested": folds, f"{key}_left": round(max(left, 0.0), 2),
            f"{key}_needed": round(needed, 2)}


def _new_plan(store: Path, candidates: list[dict], trials: list[dict], k: int, cost: plan.Cost,
              left: float | None, key: str, log) -> list[str]:
    """Write the plan (``trials`` on ``k`` folds) for a resumed run; the candidates passed over
    (better than ``trials[0]``, too costly for the time left), said when there are any."""
    best = candidates[0]
    passed_over = [t["trial_id"] for t in candidates[:candidates.index(trials[0])]]
    if passed_over:
        log(f"refit: two folds of the best configuration (trial {best['trial_id']}) need about "
            f"{choices.budget_text(cost([best], 2), key)}, "
            f"{choices.budget_text(max(left, 0), key)} are left: "
            f"refitting "
            f"the next best that fits (trial {trials[0]['trial_id']})")
    store.mkdir(parents=True, exist_ok=True)
    records.write_json(store / PLAN_FILE, {"trials": [t["trial_id"] for t in trials], "folds": k,
                                           "passed_over": passed_over})
    return passed_over


def checked_refit(task: Task, result: RefitResult, *, log=print) -> RefitResult | dict:
    """The refit without the configurations that have a failed fold model
    (:func:`automl.refit.fold_models.failed_folds`); why it was rejected (a dict) when that leaves
    none: the search's choices on validation then stand."""
    failed = fold_models.failed_folds(task, result)
    measure = task.objective.removeprefix("val_")
    for f in failed:
        log(f"refit: trial {f['trial_id']}, fold {f['fold'] + 1} failed: {measure} "
            f"{f['quality']:.3f} on its held-out images against {f['validation']:.3f} on validation in the "
            f"search (tolerance {fold_models.FOLD_TOLERANCE:g})")
    if not failed:
        return result
    kept = fold_models.without(result, {f["trial_id"] for f in failed})
    if not kept.trials:
        log("refit rejected: no configuration has every fold model sound; choices made on validation")
        return {**result.plan, "rejected": failed, "seconds": round(result.seconds, 2)}
    kept.plan = {**kept.plan, "failed_folds": failed}
    return kept
