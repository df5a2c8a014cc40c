"""The search orchestrator: check the configuration, prepare data, run the tuner, then score once."""

from __future__ import annotations

import dataclasses
import functools
import shlex
import signal
import sys
from pathlib import Path

from automl import records
from automl.data.pipeline import load_images
from automl.data.shift import SelectionSet
from automl.evaluation.context import RunContext
from automl.models import backbones, determinism, precision
from automl.search import finish, interrupts, oracles, tuners
from automl.search.budget import Budget, now
from automl.search.callbacks import trial_callbacks
from automl.search.hypermodel import TaskHyperModel
from automl.search.refit_step import refit_after_search, refit_folds, refit_planned, refit_reserve
from automl.settings import choices
from automl.settings.run_config import SearchConfig
from automl.tasks import check_config, objective_name, task_data
from automl.tasks.base import SearchSpace, SplitData, Task


def prepare(config: SearchConfig, *, decode: bool = True, log=print):
    """Check the options, resolve data, apply the budget, scan, split and (``decode``) check the
    images decode: a run folder can be made without decoding what only its training reads.

    Returns:
        ``(config, index, task, parts)``: the configuration as run (budget defaults and
        data folder filled in), the data index, the task and its rows per split.
    """
    task, data = task_data(check_config(config), log=log)
    config = check_config(data.config)  # the task's checks of the budget's defaults too
    if config.validation == "shift" and not task.supports_shift_validation:
        log(f"shift validation does not apply to the {task.name} task (it has no shifted "
            f"selection set): selecting on plain validation")
        config = dataclasses.replace(config, validation="plain")  # recorded as applied
    if config.screen_size and not task.supports_shift_validation:
        log(f"image-size screening applies to the classifiers, not to the {task.name} task: "
            f"every trial trains at {config.image_size} px")
        config = dataclasses.replace(config, screen_size=0)
    if decode:
        data.check_decoding()
    return config, data.index, task, data.parts


def selection_set(config: SearchConfig, task: Task, images, table) -> SelectionSet:
    """The run's selection set from its validation images: the same for training,
    scoring and the embeddings benchmark (the shifted copies are seeded by the run)."""
    return SelectionSet.build(images, task.labels(table), shifted=config.validation == "shift",
                              seed=config.seed)


def create_run(config: SearchConfig, *, log=print) -> tuple[Path, SearchConfig]:
    """A new, empty run folder with its ``config.json`` (budget defaults applied)."""
    config, *_ = prepare(config, decode=False, log=log)
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
    config, run_dir, index, task, parts = open_run(config, resume=resume, strategy=strategy, log=log)
    _seed(config, log)
    policy = training_policy(config, task, log=log)
    # Every image size a trial may train at: the run's, and the screening size.
    data = training_data(config, task, parts, log=log)
    train, val = data[config.image_size]
    objective = objective_name(config)
    folds = refit_folds(config, task)
    budget, spent = search_budget(config, run_dir, parts, folds, resume=resume, role=role, log=log)
    space = search_space(config, policy)
    task.attach_training(train)
    hypermodel = TaskHyperModel(task, space, data, screen_size=config.screen_size or None,
                                prune=config.prune, records_path=run_dir / "trials.jsonl", budget=budget)
    tuner = tuners.build_tuner(config, hypermodel, run_dir, objective=objective, overwrite=not resume,
                               budget=budget)
    searched = search(tuner, config, run_dir, budget, refit_planned=refit_planned(run_dir, resume, folds),
                      role=role, verbose=verbose, log=log)
    if role == "worker":
        return run_dir  # the chief scores the best model once every worker is done
    searched += spent

    refit_result, refit_skipped = refit_after_search(config, run_dir, task, space, data, objective, folds,
                                                     budget, log=log)
    # Scoring builds every model in float32: mixed precision pays off in training, the weights are
    # float32 either way, and a float32 model gives scores, saliency and exports full precision.
    hypermodel.space = dataclasses.replace(hypermodel.space, dtype_policy="float32")
    precision.use_policy("float32")
    context = RunContext(
        run_dir=run_dir, task=task, config=dataclasses.asdict(config), data_root=index.root,
        data_problems=index.problems, parts=parts, selection=val.selection, objective=objective,
        load_model=lambda trial: tuner.load_model(tuner.oracle.get_trial(trial["trial_id"])),
        search_seconds=searched, log=log,
        summary_extra={"precision_policy": policy, "xla": config.xla,
                       "deterministic": config.is_deterministic,
                       "search_compute": round(search_compute(run_dir), 3),
                       **({"refit_skipped": refit_skipped} if refit_skipped else {})}, refit=refit_result)
    summary = finish.finish_run(context)
    if summary["best_trial"] is None:
        log(f"every trial failed ({summary['trials_failed']}); see {run_dir / 'trials.jsonl'}")
        raise SystemExit(1)
    log(f"\nnext: make report OUT={config.out}   |   make tensorboard RUN={run_dir}   |   "
        f"automl predict --run {run_dir} IMAGE_OR_FOLDER   (model card: {run_dir / 'MODEL_CARD.md'})")
    return run_dir


def _seed(config: SearchConfig, log) -> None:
    determinism.configure(config.is_deterministic, config.seed)
    if config.is_deterministic:
        log("deterministic training: seeded trials, deterministic ops and input order")


def open_run(config: SearchConfig, *, resume: str | Path | None, strategy: str | None, log=print):
    """The run's configuration, folder, data index, task and rows per split (:func:`prepare`): a new
    folder, or the ``resume`` folder with its saved configuration (``strategy`` overriding its own)."""
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
    return config, run_dir, index, task, parts


def training_policy(config: SearchConfig, task: Task, *, log=print) -> str:
    """Set the trials' dtype policy (:func:`automl.models.precision.apply_precision`); its name."""
    policy = precision.apply_precision(config.precision if task.trains_in_mixed_precision else "float32")
    if policy != "float32":
        log(f"precision: {policy} (float32 outputs, loss and metrics)")
    elif config.precision != "float32" and not task.trains_in_mixed_precision:
        log(f"precision: float32 (the {task.name} task always trains in float32)")
    return policy


def training_data(config: SearchConfig, task: Task, parts: dict, *, log=print) -> dict:
    """The (train, validation) splits (:func:`split_data`) at every image size a trial may train at."""
    data = {size: split_data(config, task, parts, size)
            for size in dict.fromkeys([config.image_size, config.screen_size]) if size}
    val = data[config.image_size][1]
    if val.selection.shifted:
        log(f"shift validation: {val.selection.n_clean} validation images + "
            f"{len(val.selection.images) - val.selection.n_clean} simulated re-acquisitions")
    if config.screen_size:
        log(f"multi-fidelity: configurations screened at {config.screen_size} px, the best retrained at "
            f"{config.image_size} px")
    return data


def search_space(config: SearchConfig, policy: str) -> SearchSpace:
    """The trials' search space; ``policy``: the dtype policy they train in."""
    fixed = dict(config.fixed, **({"batch_size": config.batch_size} if config.batch_size else {}))
    return SearchSpace(config.image_size, tuple(config.families), config.pretrained, config.seed, fixed,
                       objective_name(config), jit_compile=precision.jit_compile_value(config.xla),
                       dtype_policy=policy)


def search_budget(config: SearchConfig, run_dir: Path, parts: dict, folds: int, *,
                  resume: str | Path | None, role: str | None, log=print) -> tuple[Budget, float]:
    """The search's budget (compute units, or the wall clock's minutes), keeping what a refit on
    ``folds`` folds needs, and the seconds a resumed run had searched already. A single process
    resumed gets the rest of its budget, not a new one: a compute budget counts the recorded
    trials' compute, a time budget what is left of its minutes."""
    spent = _previous_search_seconds(run_dir) if resume else 0.0
    records_path = run_dir / "trials.jsonl"
    if config.compute_units:
        budget = Budget(units=config.compute_units, records_path=records_path)
        if resume and role is None and (spent_units := budget.spent_compute()):
            log(f"resumed: {spent_units:.0f} of the {config.compute_units:g} compute units spent")
    else:
        minutes = config.time_budget_minutes
        if spent and minutes and role is None:
            minutes = max(config.time_budget_minutes - spent / 60, 0.05)
            log(f"resumed after {spent / 60:.1f} search minutes: {minutes:.1f} of the "
                f"{config.time_budget_minutes:g}-minute budget left")
        budget = Budget(minutes, records_path=records_path)
    if folds and budget.amount:
        # The search leaves the refit its share: estimated from the trials so far.
        budget.reserve = functools.partial(refit_reserve, config, run_dir, folds, parts,
                                           amount=choices.REFIT_MAX_SHARE * budget.amount, key=budget.key)
    return budget, spent


def search(tuner, config: SearchConfig, run_dir: Path, budget: Budget, *, refit_planned: bool,
           role: str | None, verbose: bool, log=print) -> float:
    """Start the ``budget``'s clock and run the ``tuner``'s trials (none when the refit was planned);
    returns the seconds searched. Raises SystemExit(130) when interrupted (finished trials are kept)."""
    tuners.show_failed_trial_tracebacks(verbose)  # the trial's line and record carry the error
    if refit_planned:
        log("resumed during the refit: the search had ended, the refit goes on")
    budget.start()
    if role == "chief":
        oracles.make_chief(tuner.oracle, budget)
    previous = interrupts.install_interrupt_handlers()
    try:
        if not refit_planned:
            tuner.search(epochs=config.epochs, verbose=2 if verbose else 0,
                         callbacks=trial_callbacks(config, run_dir, objective_name(config), budget))
        interrupts.check_interrupted()
    except interrupts.RunInterrupted as error:
        log(f"\nInterrupted ({error}). Finished trials are saved in {run_dir / 'trials.jsonl'}; "
            f"continue with: automl search --resume {run_dir}")
        raise SystemExit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return now() - budget.started


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


def search_compute(run_dir: Path) -> float:
    """Compute units the run's trials were charged (:mod:`automl.models.cost`)."""
    return float(sum(t.get("compute") or 0.0 for t in records.read_jsonl(run_dir / "trials.jsonl")))


def _previous_search_seconds(run_dir: Path) -> float:
    """Search time already spent by an interrupted run: its summary's, or (killed before
    one was written) the recorded trials' seconds, a lower bound of the wall time."""
    summary = run_dir / "summary.json"
    if summary.exists():
        return float(records.read_json(summary).get("search_seconds", 0.0))
    return float(sum(t.get("seconds") or 0.0 for t in records.read_jsonl(run_dir / "trials.jsonl")))
