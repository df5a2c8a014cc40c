"""The search orchestrator: check the configuration, prepare data, run the tuner, then score once."""

from __future__ import annotations

import dataclasses
import shlex
import signal
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from automl import records
from automl.data import rebuild, shift
from automl.data.pipeline import load_images
from automl.data.shift import SelectionSet
from automl.evaluation import scoring
from automl.models import backbones, precision
from automl.refit import crossfit
from automl.search import tuning
from automl.settings import choices
from automl.settings.run_config import SearchConfig
from automl.tasks import get_task
from automl.tasks.base import SearchSpace, SplitData, Task


def prepare(config: SearchConfig, *, log=print):
    """Check the options, resolve data, apply the budget, scan, split and check the images decode.

    Returns:
        ``(config, index, task, parts)``: the configuration as run (budget defaults and
        data folder filled in), the data index, the task and its rows per split.
    """
    task = get_task(config.validate().task)
    data = rebuild.run_data(config, select=task.select, log=log)
    config = data.config
    if config.validation == "shift" and not task.supports_shift_validation:
        log(f"shift validation does not apply to the {task.name} task (it has no shifted "
            f"selection set): selecting on plain validation")
        config = dataclasses.replace(config, validation="plain")  # recorded as applied
    if config.screen_size and not task.supports_shift_validation:
        log(f"image-size screening applies to the classifiers, not to the {task.name} task: "
            f"every trial trains at {config.image_size} px")
        config = dataclasses.replace(config, screen_size=0)
    data.check_decoding()
    return config, data.index, task, data.parts


def selection_set(config: SearchConfig, task: Task, images, table) -> SelectionSet:
    """The run's selection set from its validation images: the same for training,
    scoring and the embeddings benchmark (the shifted copies are seeded by the run)."""
    return SelectionSet.build(images, task.labels(table), shifted=config.validation == "shift",
                              seed=config.seed)


def create_run(config: SearchConfig, *, log=print) -> tuple[Path, SearchConfig]:
    """A new, empty run folder with its ``config.json`` (budget defaults applied)."""
    config, *_ = prepare(config, log=log)
    return new_run_dir(config), config


def new_run_dir(config: SearchConfig) -> Path:
    """A fresh folder (never an old one: the id is time-stamped and random) holding the
    command, the configuration and the environment, written before any training."""
    run_dir = Path(config.out) / records.new_run_id(config.task)
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "command.txt").write_text(command_line() + "\n")
    records.write_json(run_dir / "config.json", dataclasses.asdict(config))
    records.write_environment(run_dir)
    return run_dir


def run_search(config: SearchConfig, *, resume: str | Path | None = None, role: str | None = None,
               strategy: str | None = None, verbose: bool = False, log=print) -> Path:
    """Search, record, score; returns the run folder.

    Args:
        resume: an existing run folder to continue (finished trials are kept).
        role: ``chief`` or ``worker`` under Keras Tuner's distributed mode (set up
            by :mod:`automl.search.distributed`); None for a single process.
        strategy: overrides the saved ``strategy`` of a resumed run (a worker host
            may have several GPUs where the chief has none).
        verbose: Keras Tuner's own tables (each trial's hyperparameters) on the console;
            without it, one line per epoch and one per trial.

    Raises:
        ValueError: an option is not allowed (before any folder is made).
        SystemExit(1): every trial failed. SystemExit(130): interrupted.
    """
    if resume:
        run_dir = Path(resume)
        config = SearchConfig.load(run_dir)
        if strategy:
            config = dataclasses.replace(config, strategy=strategy)
    config, index, task, parts = prepare(config, log=log)
    if config.pretrained:
        backbones.preflight_pretrained(config.families, config.image_size)
    if not resume:
        run_dir = new_run_dir(config)
    log(f"run folder: {run_dir}")

    keras.utils.set_random_seed(config.seed)
    policy = precision.apply_precision(config.precision if task.trains_in_mixed_precision else "float32")
    if policy != "float32":
        log(f"precision: {policy} (float32 outputs, loss and metrics)")
    elif config.precision != "float32" and not task.trains_in_mixed_precision:
        log(f"precision: float32 (the {task.name} task always trains in float32)")
    # Every image size a trial may train at: the run's, and the screening size.
    data = {size: split_data(config, task, parts, size)
            for size in dict.fromkeys([config.image_size, config.screen_size]) if size}
    train, val = data[config.image_size]
    if val.selection.shifted:
        log(f"shift validation: {val.selection.n_clean} validation images + "
            f"{len(val.selection.images) - val.selection.n_clean} simulated re-acquisitions")
    if config.screen_size:
        log(f"multi-fidelity: configurations screened at {config.screen_size} px, the best retrained at "
            f"{config.image_size} px")
    fixed = dict(config.fixed, **({"batch_size": config.batch_size} if config.batch_size else {}))
    objective = config.objective_name
    # A resumed run has spent part of its wall budget already: it gets the rest, not a new one.
    spent = _previous_search_seconds(run_dir) if resume else 0.0
    budget = config
    if spent and config.time_budget_minutes and role is None:
        budget = dataclasses.replace(config, time_budget_minutes=max(
            config.time_budget_minutes - spent / 60, 0.05))
        log(f"resumed after {spent / 60:.1f} search minutes: {budget.time_budget_minutes:.1f} of the "
            f"{config.time_budget_minutes:g}-minute budget left")
    space = SearchSpace(config.image_size, tuple(config.families), config.pretrained, config.seed, fixed,
                        objective, jit_compile=precision.jit_compile_value(config.xla), dtype_policy=policy)
    task.attach_training(train)
    hypermodel = tuning.TaskHyperModel(task, space, data, screen_size=config.screen_size or None,
                                       prune=config.prune, records_path=run_dir / "trials.jsonl")
    tuner = tuning.build_tuner(budget, hypermodel, run_dir, objective=objective, overwrite=not resume)
    folds = choices.refit_folds(config.refit) if task.evaluation != "anomaly" else 0
    pool_size = len(parts["train"]) + len(parts["val"])
    if folds and budget.time_budget_minutes:
        # The search leaves the refit its time: estimated from the trials so far.
        tuner.reserve_seconds = lambda: refit_estimate(
            config, run_dir, objective, folds, pool_size, len(parts["train"]),
            seconds=choices.REFIT_MAX_SHARE * 60 * budget.time_budget_minutes)
    if role == "chief":
        tuning.make_chief(tuner.oracle, budget.time_budget_minutes)

    tuning.show_failed_trial_tracebacks(verbose)  # the trial's line and record carry the error
    # The refit is planned once the search has ended: a run killed during its refit goes on
    # with the refit. Searching again would start trials in the time kept for the refit and
    # could make a trial best that the planned refit does not retrain.
    refit_planned = bool(resume and folds and (run_dir / "refit" / crossfit.PLAN_FILE).exists())
    if refit_planned:
        log("resumed during the refit: the search had ended, the refit goes on")
    started = time.time()
    previous = tuning.install_interrupt_handlers()
    try:
        if not refit_planned:
            callbacks = tuning.trial_callbacks(budget, run_dir, objective,
                                               reserve=lambda: tuner.reserve_seconds())
            tuner.search(epochs=config.epochs, callbacks=callbacks,
                         verbose=2 if verbose else 0)
        tuning.check_interrupted()
    except tuning.RunInterrupted as error:
        log(f"\nInterrupted ({error}). Finished trials are saved in {run_dir / 'trials.jsonl'}; "
            f"continue with: automl search --resume {run_dir}")
        raise SystemExit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if role == "worker":
        return run_dir  # the chief scores the best model once every worker is done
    searched = time.time() - started + spent

    refit_result, refit_skipped = None, None
    if folds:
        # The refit may overrun the budget as much as a trial running at its end may: the kept
        # time is an estimate made while searching, and the searches recorded before this rule
        # skipped their refit for want of 7 seconds (binary-study-23997b7e, -21e478cb, seed 1).
        minutes = budget.time_budget_minutes
        seconds_left = (60 * (minutes + choices.overrun_minutes(minutes)) - (time.time() - started)
                        if minutes else None)
        refit_result = run_refit(config, run_dir, task, space, data[config.image_size], objective, folds,
                                 seconds_left=seconds_left, log=log)
        if isinstance(refit_result, dict):
            refit_result, refit_skipped = None, refit_result
    # Scoring builds every model in float32: mixed precision pays off in training, while
    # the weights are float32 variables either way, and a float32 model gives the scores,
    # saliency gradients and exports their full precision.
    hypermodel.space = dataclasses.replace(hypermodel.space, dtype_policy="float32")
    keras.mixed_precision.set_global_policy("float32")
    context = scoring.RunContext(
        run_dir=run_dir, task=task, config=dataclasses.asdict(config), data_root=index.root,
        data_problems=index.problems, parts=parts, selection=val.selection, objective=objective,
        load_model=lambda trial: tuner.load_model(tuner.oracle.get_trial(trial["trial_id"])),
        search_seconds=searched, log=log,
        summary_extra={"precision_policy": policy, "xla": config.xla,
                       **({"refit_skipped": refit_skipped} if refit_skipped else {})}, refit=refit_result)
    summary = scoring.score_run(context)
    if summary["best_trial"] is None:
        log(f"every trial failed ({summary['trials_failed']}); see {run_dir / 'trials.jsonl'}")
        raise SystemExit(1)
    log(f"\nnext: make report OUT={config.out}   |   make tensorboard RUN={run_dir}   |   "
        f"automl predict --run {run_dir} IMAGE_OR_FOLDER   (model card: {run_dir / 'MODEL_CARD.md'})")
    return run_dir


def refit_candidates(config: SearchConfig, run_dir: Path, objective: str) -> list[dict]:
    """The configurations a refit may retrain: the best distinct full-size trials, as many as
    the ensemble would take (within the latency cap, if any), and of them those within
    :data:`automl.refit.crossfit.CANDIDATE_MARGIN` of the best on the validation objective."""
    ranked = scoring.ranked_trials(records.read_jsonl(run_dir / "trials.jsonl"), objective,
                                   image_size=config.image_size)
    if config.max_latency_ms is not None:
        ranked = scoring.within_latency(ranked, config.max_latency_ms)
    top = scoring.distinct_top(ranked, config.ensemble or 1)
    return [t for t in top if abs(t["metrics"][objective] - top[0]["metrics"][objective])
            <= crossfit.CANDIDATE_MARGIN]


def refit_cost(config: SearchConfig, objective: str, pool_size: int, train_size: int):
    """``cost(trials, k)``: the estimated seconds of refitting ``trials`` on ``k`` folds."""
    copies = 1 + shift.COPIES if config.validation == "shift" else 1
    return lambda trials, k: crossfit.estimate_seconds(
        trials, k, objective=objective, direction=choices.objective_direction(objective), pool_size=pool_size,
        train_size=train_size, scored_copies=copies)


def refit_estimate(config: SearchConfig, run_dir: Path, objective: str, folds: int, pool_size: int,
                   train_size: int, *, seconds: float) -> float:
    """Seconds to keep free for the refit of today's best configurations: what the largest
    plan that fits in ``seconds`` costs (0 when none fits: the refit will be skipped)."""
    cost = refit_cost(config, objective, pool_size, train_size)
    trials, k = crossfit.plan(refit_candidates(config, run_dir, objective), folds, cost, seconds)
    return cost(trials, k) if trials else 0.0


def run_refit(config: SearchConfig, run_dir: Path, task: Task, space: SearchSpace, data, objective: str,
              folds: int, *, seconds_left: float | None, log=print):
    """Retrain the best configurations on up to ``folds`` folds of train + validation, as
    many folds, then configurations, as the time left allows. Returns the refit
    (:class:`automl.refit.crossfit.RefitResult`), or why it was skipped or rejected (a dict): not even
    two folds of any candidate fit the time left, or every configuration has a failed fold
    model; None without candidates. When two folds of the best do not fit but a lesser
    candidate's do, that one is refitted (``plan["passed_over"]`` names the trials above it)."""
    train, val = data
    candidates = refit_candidates(config, run_dir, objective)
    if not candidates:
        return None
    pool = pd.concat([train.table, val.table], ignore_index=True)
    cost = refit_cost(config, objective, len(pool), len(train.table))
    store = run_dir / "refit"
    planned = records.read_json(store / crossfit.PLAN_FILE) if (store / crossfit.PLAN_FILE).exists() else None
    if planned:
        # A resumed run refits what it had planned, keeping the fold models it finished.
        by_id = {t["trial_id"]: t for t in records.read_jsonl(run_dir / "trials.jsonl")}
        trials, k = [by_id[i] for i in planned["trials"]], planned["folds"]
        passed_over = planned.get("passed_over", [])
    else:
        best = candidates[0]
        trials, k = crossfit.plan(candidates, folds, cost, seconds_left)
        if not trials:
            needed = cost([best], 2)
            log(f"refit skipped: two folds of trial {best['trial_id']} need about {needed / 60:.1f} "
                f"minutes, {max(seconds_left, 0) / 60:.1f} are left in the budget; choices made on "
                f"validation")
            return {"folds_requested": folds, "seconds_left": round(max(seconds_left, 0.0), 2),
                    "seconds_needed": round(needed, 2)}
        passed_over = [t["trial_id"] for t in candidates[:candidates.index(trials[0])]]
        if passed_over:
            log(f"refit: two folds of the best configuration (trial {best['trial_id']}) need about "
                f"{cost([best], 2) / 60:.1f} minutes, {max(seconds_left, 0) / 60:.1f} are left: refitting "
                f"the next best that fits (trial {trials[0]['trial_id']})")
        store.mkdir(parents=True, exist_ok=True)
        records.write_json(store / crossfit.PLAN_FILE, {"trials": [t["trial_id"] for t in trials], "folds": k,
                                                     "passed_over": passed_over})
    log(f"refit: {len(trials)} configuration(s) x {k} folds of {len(pool)} train + validation images, "
        f"about {cost(trials, k) / 60:.1f} minutes"
        + (f" ({max(seconds_left, 0) / 60:.1f} left in the budget)" if seconds_left is not None else ""))
    result = crossfit.cross_fit(task, space, pool, np.concatenate([train.images, val.images]), trials, k,
                             objective=objective, direction=choices.objective_direction(objective),
                             shifted=config.validation == "shift", seed=config.seed, store=store, log=log)
    result.plan = {"folds_requested": folds, "seconds_left": seconds_left,
                   "seconds_estimated": round(cost(trials, k), 2),
                   **({"passed_over": passed_over} if passed_over else {})}
    return checked_refit(task, result, log=log)


def checked_refit(task: Task, result: crossfit.RefitResult, *, log=print):
    """The refit without the configurations that have a failed fold model
    (:func:`automl.refit.crossfit.failed_folds`); why it was rejected (a dict) when that leaves none:
    the search's choices on validation then stand."""
    failed = crossfit.failed_folds(task, result)
    measure = task.objective.removeprefix("val_")
    for f in failed:
        log(f"refit: trial {f['trial_id']}, fold {f['fold'] + 1} failed: {measure} "
            f"{f['quality']:.3f} on its held-out images against {f['validation']:.3f} on validation in the "
            f"search (tolerance {crossfit.FOLD_TOLERANCE:g})")
    if not failed:
        return result
    kept = crossfit.without(result, {f["trial_id"] for f in failed})
    if not kept.trials:
        log("refit rejected: no configuration has every fold model sound; choices made on validation")
        return {**result.plan, "rejected": failed, "seconds": round(result.seconds, 2)}
    kept.plan = {**kept.plan, "failed_folds": failed}
    return kept


def split_data(config: SearchConfig, task: Task, parts: dict, image_size: int) -> tuple[SplitData, SplitData]:
    """The training and validation splits decoded at ``image_size``, validation with the
    run's selection set at that size."""
    train = SplitData(parts["train"], load_images(parts["train"].path, image_size))
    val_images = load_images(parts["val"].path, image_size)
    return train, SplitData(parts["val"], val_images, selection_set(config, task, val_images, parts["val"]))


def command_line() -> str:
    """The command that made the run, as a user would retype it, for the report."""
    program = Path(sys.argv[0])
    if program.name == "automl":
        return shlex.join(["automl", *sys.argv[1:]])
    if program.suffix == ".py" and program.parent.name == "benchmarks":
        return shlex.join(["python", f"benchmarks/{program.name}", *sys.argv[1:]])
    return "automl search (called from Python)"


def _previous_search_seconds(run_dir: Path) -> float:
    """Search time already spent by an interrupted run: its summary's, or (killed before
    one was written) the recorded trials' seconds, a lower bound of the wall time."""
    summary = run_dir / "summary.json"
    if summary.exists():
        return float(records.read_json(summary).get("search_seconds", 0.0))
    return float(sum(t.get("seconds") or 0.0 for t in records.read_jsonl(run_dir / "trials.jsonl")))
