"""Run a Keras Tuner search for a task, record every trial, and score the chosen model once."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd

from automl import backbones, metrics, plots, records, shift
from automl.data import index as data_index
from automl.data import source
from automl.data.pipeline import load_images
from automl.data.splits import make_splits
from automl.tasks import get_task
from automl.tasks.base import SearchSpace, SplitData, SupervisedTask, Task

TUNERS = ("hyperband", "bayesian", "random", "grid")
THRESHOLD_RULES = ("balanced", "youden", "f1", "0.5")
# A trial still running when the time budget ends trains at most this much longer.
OVERRUN_MINUTES = 4.0
VALIDATIONS = ("shift", "plain")


@dataclass
class SearchConfig:
    """Everything that defines a run; saved as ``config.json`` so ``--resume`` can rebuild it.

    ``None`` budget fields take the defaults for the data found (the demo budget
    on the synthetic set).
    """

    task: str = "binary"
    data: str | None = None
    tuner: str = "hyperband"
    max_trials: int | None = None
    epochs: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    seed: int = 0
    out: str = "runs"
    objective: str | None = None
    threshold: str = "balanced"
    # "shift": select trials, thresholds and ensembles on validation pooled with
    # simulated re-acquisitions of it (automl.shift); "plain": on validation alone.
    validation: str = "shift"
    families: tuple[str, ...] = backbones.FAMILIES
    pretrained: bool = False
    val_fraction: float = 0.2
    patience: int = 4
    time_budget_minutes: float | None = None
    trial_minutes: float | None = None
    strategy: str = "none"
    ensemble: int | None = None
    smoke: bool = False
    fixed: dict = field(default_factory=dict)

    # Defaults sized so that `make search` ends within 60 minutes on a 2-core CPU: no new
    # trial after 50, the running one cut OVERRUN_MINUTES later, then the final scoring.
    REAL = {"max_trials": 30, "epochs": 12, "image_size": 128, "time_budget_minutes": 50.0,
            "trial_minutes": 10.0, "ensemble": 3}
    DEMO = {"max_trials": 3, "epochs": 2, "image_size": 48, "time_budget_minutes": 5.0, "ensemble": 1}
    SMOKE = {"max_trials": 2, "epochs": 1, "image_size": 32, "time_budget_minutes": 5.0, "ensemble": 1}

    @classmethod
    def load(cls, run_dir: Path) -> "SearchConfig":
        """The configuration a run folder was made with (its ``config.json``)."""
        saved = records.read_json(Path(run_dir) / "config.json")
        saved["families"] = tuple(saved["families"])
        saved.setdefault("validation", "plain")  # runs made before shift validation existed
        return cls(**saved)

    def with_defaults(self, synthetic: bool) -> "SearchConfig":
        budget = self.SMOKE if self.smoke else self.DEMO if synthetic else self.REAL
        values = {k: getattr(self, k) if getattr(self, k) is not None else v for k, v in budget.items()}
        return dataclasses.replace(self, **values)


class TrialTimeLimit(keras.callbacks.Callback):
    """Stop a trial's training after ``minutes`` of wall time, or at the wall-clock time
    ``stop_at`` (seconds since the epoch), whichever is first; the best epoch is kept.

    One slow configuration must not eat the whole search budget on a CPU, and the
    trial running when the search budget ends must not overrun it by much.
    """

    def __init__(self, minutes: float | None, stop_at: float | None = None):
        super().__init__()
        self.minutes, self.stop_at = minutes, stop_at

    def on_train_begin(self, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        now = time.time()
        if self.minutes and now - self.started > 60 * self.minutes:
            print(f"trial stopped: over its {self.minutes:g}-minute limit")
            self.model.stop_training = True
        elif self.stop_at and now > self.stop_at:
            print("trial stopped: the search's time budget is spent")
            self.model.stop_training = True


class RunInterrupted(BaseException):
    """SIGINT/SIGTERM during a search.

    A BaseException, like KeyboardInterrupt, so that Keras Tuner's per-trial
    ``except Exception`` does not record it as a failed trial and carry on.
    """


class RecordingMixin:
    """Adds per-trial records, timing and a parameter count to any Keras Tuner tuner.

    Keras Tuner already catches a failing trial and marks it; this mixin writes
    each trial's line the moment it ends (failed ones included), so finished work
    survives any later crash, and skips trials already recorded (a resumed run).
    """

    def setup_recording(self, run_dir: Path, run_id: str, task: Task, config: dict):
        self._run_dir, self._run_id, self._task, self._config = run_dir, run_id, task, config
        self._records_path = run_dir / "trials.jsonl"
        self._started: dict[str, tuple[float, str]] = {}
        self._histories: dict[str, dict] = {}
        self._params: dict[str, int] = {}
        self._deadline = (time.time() + 60 * config["time_budget_minutes"]
                          if config.get("time_budget_minutes") else None)

    def on_trial_begin(self, trial):
        self._started[trial.trial_id] = (time.time(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self._gradients_before = _custom_gradient_names()
        super().on_trial_begin(trial)

    def _try_build(self, hp):
        model = super()._try_build(hp)
        trial_id = getattr(self, "_current_trial_id", None)
        if trial_id is not None:
            self._params[trial_id] = int(model.count_params())
        return model

    def run_trial(self, trial, *args, **kwargs):
        self._current_trial_id = trial.trial_id
        results = super().run_trial(trial, *args, **kwargs)
        self._histories[trial.trial_id] = {
            k: [float(v) for v in vals] for k, vals in results[-1].history.items()}
        return results

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        # Free this trial's traced graphs now (see _forget_custom_gradients): without
        # it every trial's train step stayed in memory for the rest of the search.
        _forget_custom_gradients(getattr(self, "_gradients_before", None))
        gc.collect()
        if self._deadline and time.time() > self._deadline:
            # Out of wall-clock budget: let the oracle report STOPPED on the next request.
            self.oracle.max_trials = len(self.oracle.trials)
        recorded = {r["trial_id"] for r in records.read_jsonl(self._records_path)}
        if trial.trial_id in recorded:
            return
        history = self._histories.pop(trial.trial_id, {})
        completed = trial.status == kt.engine.trial.TrialStatus.COMPLETED
        started, started_at = self._started.pop(trial.trial_id, (time.time(), None))
        records.append_jsonl(self._records_path, {
            "run_id": self._run_id,
            "task": self._task.name,
            "trial_id": trial.trial_id,
            "worker": self.tuner_id,
            "status": "COMPLETED" if completed else "FAILED",
            "error": None if completed else _short_error(trial.message),
            "hparams": dict(trial.hyperparameters.values),
            "metrics": _best_metrics(history),
            "history": history,
            "params": self._params.pop(trial.trial_id, None),
            "seconds": round(time.time() - started, 3),
            "started_at": started_at,
        })


def _gradient_registry() -> dict | None:
    """TensorFlow's global op-type -> gradient-function table (private; None if it moved)."""
    try:
        from tensorflow.python.framework import ops as tf_ops

        return tf_ops._gradient_registry._registry
    except (ImportError, AttributeError):
        return None


def _custom_gradient_names() -> set[str]:
    registry = _gradient_registry()
    return {n for n in registry if n.startswith("CustomGradient-")} if registry is not None else set()


def _forget_custom_gradients(before: set[str] | None) -> None:
    """Drop the ``tf.custom_gradient`` entries registered since ``before``.

    Every trace of a Keras train step registers one, under a fresh name, in
    TensorFlow's global gradient registry: the optimizer all-reduces the
    gradients (an identity on one device) and ``all_reduce`` is a
    ``tf.custom_gradient``, which in graph mode calls ``ops.RegisterGradient``
    and never unregisters. The entry's closure holds the traced graph's tensors,
    so each trial's whole train-step graph (and its optimizer's functions)
    outlived ``clear_session``: about 12-15 MB per trial at 32 px, and the
    bench_memory growth. The entries are only looked up while differentiating
    those graphs, which were differentiated when traced; the trial's model is
    discarded (its weights are in the checkpoint), so nothing needs them again.
    """
    registry = _gradient_registry()
    if registry is None or before is None:
        return
    for name in _custom_gradient_names() - before:
        registry.pop(name, None)


def _tuner_class(name: str):
    base = {"hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization,
            "random": kt.RandomSearch, "grid": kt.GridSearch}[name]
    return type(f"Recording{base.__name__}", (RecordingMixin, base), {})


class TaskHyperModel(kt.HyperModel):
    """Keras Tuner's view of a task: build from ``hp``, fit on the task's splits."""

    def __init__(self, task: Task, space: SearchSpace, train: SplitData, val: SplitData):
        super().__init__(name=task.name)
        self.task, self.space, self.train, self.val = task, space, train, val
        # True while Keras Tuner builds models only to discover the search space.
        self.discovering = False

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        for name, value in self.space.fixed.items():
            hp.Fixed(name, value)

    def build(self, hp):
        try:
            return self.task.build(hp, self.space)
        except ValueError:
            if not self.discovering:
                raise  # a real trial: Keras Tuner records it as failed
            # The default configuration may be unbuildable for this image size;
            # that must fail a trial, not the whole search.
            return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    def fit(self, hp, model, *args, **kwargs):
        return self.task.fit(hp, model, self.train, self.val, self.space, **kwargs)


def _best_metrics(history: dict) -> dict:
    """Best value of each metric over epochs (min for losses, max for the rest)."""
    best = {}
    for name, values in history.items():
        if values:
            best[name] = float(min(values) if "loss" in name else max(values))
    return best


def _short_error(message: str | None) -> str | None:
    if not message:
        return None
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return "\n".join(lines[-3:])[-1500:]


def _signal_to_exception(signum, frame):
    raise RunInterrupted(signal.Signals(signum).name)


def prepare(config: SearchConfig, *, log=print):
    """Resolve data, apply the budget, scan, split and decode the training images."""
    src = source.resolve(config.data, log=log) if not config.smoke else \
        source.DataSource(source.synthetic_set(), synthetic=True)
    config = config.with_defaults(src.synthetic)
    config = dataclasses.replace(config, data=str(src.path))
    index = data_index.scan(src.path)
    for problem in index.problems:
        log(f"skipped {problem['path']}: {problem['reason']}")
    task = get_task(config.task)
    if config.validation not in VALIDATIONS:
        raise ValueError(f"unknown validation {config.validation!r}; choose {' or '.join(VALIDATIONS)}")
    if not isinstance(task, SupervisedTask):
        # Recorded as applied: the autoencoder's objective reads validation normals only.
        config = dataclasses.replace(config, validation="plain")
    if (config.objective or "").startswith("val_shift_") and config.validation != "shift":
        raise ValueError(f"objective {config.objective!r} needs shift validation "
                         f"(--validation shift; classifier tasks only)")
    splits = make_splits(index, val_fraction=config.val_fraction, seed=config.seed)
    parts = {name: task.select(getattr(splits, name)) for name in ("train", "val", "test")}
    return config, src, index, task, parts


def create_run(config: SearchConfig, *, log=print) -> tuple[Path, SearchConfig]:
    """A new, empty run folder with its ``config.json`` (budget defaults applied)."""
    config, *_ = prepare(config, log=log)
    return _new_run_dir(config), config


def _new_run_dir(config: SearchConfig) -> Path:
    """A fresh folder (never an old one: the id is time-stamped and random) with the command."""
    run_dir = Path(config.out) / records.new_run_id(config.task)
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "command.txt").write_text(_command_line() + "\n")
    records.write_json(run_dir / "config.json", dataclasses.asdict(config))
    return run_dir


def run_search(config: SearchConfig, *, resume: str | Path | None = None, role: str | None = None,
               strategy: str | None = None, log=print) -> Path:
    """Search, record, evaluate; returns the run folder.

    Args:
        resume: an existing run folder to continue (finished trials are kept).
        role: ``chief`` or ``worker`` under Keras Tuner's distributed mode (set up
            by :mod:`automl.distributed`); None for a single process.
        strategy: overrides the saved ``strategy`` of a resumed run (a worker host
            may have several GPUs where the chief has none).

    Raises:
        SystemExit(1): every trial failed.
    """
    if resume:
        run_dir = Path(resume)
        config = SearchConfig.load(run_dir)
        if strategy:
            config = dataclasses.replace(config, strategy=strategy)
        run_id = run_dir.name
    config, src, index, task, parts = prepare(config, log=log)
    if config.tuner not in TUNERS:
        raise ValueError(f"unknown tuner {config.tuner!r}; choose one of {', '.join(TUNERS)}")
    if config.pretrained:
        backbones.preflight_pretrained(config.families, config.image_size)
    if not resume:
        run_dir = _new_run_dir(config)
        run_id = run_dir.name
    log(f"run folder: {run_dir}")

    keras.utils.set_random_seed(config.seed)
    train = SplitData(parts["train"], load_images(parts["train"].path, config.image_size))
    val = SplitData(parts["val"], load_images(parts["val"].path, config.image_size))
    if uses_shift_validation(config, task):
        val.shifted = shift.shifted_copies(val.images, seed=config.seed)
        log(f"shift validation: {len(val.images)} validation images + {len(val.shifted)} "
            f"simulated re-acquisitions")
    fixed = dict(config.fixed)
    if config.batch_size:
        fixed["batch_size"] = config.batch_size
    space = SearchSpace(config.image_size, tuple(config.families), config.pretrained, config.seed, fixed)
    objective_name = config.objective or (
        task.shift_objective if uses_shift_validation(config, task) else task.objective)
    tuner = build_tuner(config, task, space, train, val, run_dir, run_id, objective_name,
                        overwrite=not resume)
    if role == "chief":
        _poll_workers_faster()
        if config.time_budget_minutes:
            _stop_oracle_after(tuner.oracle, config.time_budget_minutes)

    callbacks = [
        keras.callbacks.EarlyStopping(monitor=objective_name, mode="max", patience=config.patience,
                                      restore_best_weights=True),
        keras.callbacks.TerminateOnNaN(),
        TrialTimeLimit(config.trial_minutes, stop_at=None if not config.time_budget_minutes else
                       time.time() + 60 * (config.time_budget_minutes + OVERRUN_MINUTES)),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tb"), write_graph=False, profile_batch=0),
    ]
    started = time.time()
    previous = {s: signal.signal(s, _signal_to_exception) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        tuner.search(epochs=config.epochs, callbacks=callbacks, verbose=2)
    except RunInterrupted as error:
        log(f"\nInterrupted ({error}). Finished trials are saved in {run_dir / 'trials.jsonl'}; "
            f"continue with: automl search --resume {run_dir}")
        raise SystemExit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if role == "worker":
        return run_dir  # the chief scores the best model once every worker is done
    search_seconds = time.time() - started + _previous_search_seconds(run_dir)
    return finish(run_dir, run_id, config, task, tuner, parts, train, val, index, objective_name,
                  search_seconds, log=log)


def uses_shift_validation(config: SearchConfig, task: Task) -> bool:
    """Shift validation applies to the classifiers; the autoencoder has its own
    intensity handling and its objective reads only the validation normals."""
    return config.validation == "shift" and isinstance(task, SupervisedTask)


def build_tuner(config, task, space, train, val, run_dir, run_id, objective_name, *, overwrite,
                **tuner_kwargs):
    hypermodel = TaskHyperModel(task, space, train, val)
    hypermodel.discovering = True
    objective = kt.Objective(objective_name, direction="max")
    common = dict(objective=objective, directory=str(run_dir), project_name="tuner", seed=config.seed,
                  overwrite=overwrite, max_consecutive_failed_trials=10**6, **tuner_kwargs)
    if config.strategy == "mirrored":
        import tensorflow as tf

        # Several GPUs per worker: each trial's model is replicated across them.
        common["distribution_strategy"] = tf.distribute.MirroredStrategy()
    elif config.strategy != "none":
        raise ValueError(f"unknown strategy {config.strategy!r}; choose none or mirrored")
    tuner_cls = _tuner_class(config.tuner)
    if config.tuner == "hyperband":
        tuner = tuner_cls(hypermodel, max_epochs=max(config.epochs, 1), factor=3,
                          hyperband_iterations=10**6, **common)
        # Hyperband sizes itself from max_epochs; cap it at the trial budget too.
        tuner.oracle.max_trials = config.max_trials
    else:
        tuner = tuner_cls(hypermodel, max_trials=config.max_trials, **common)
    hypermodel.discovering = False
    tuner.setup_recording(run_dir, run_id, task, dataclasses.asdict(config))
    return tuner


def _poll_workers_faster() -> None:
    """Keras Tuner's chief re-checks for finished workers every 20 s once the budget is
    spent; poll every second instead so that a search ends when its last trial does."""
    import types

    from keras_tuner.src.distribute import oracle_chief

    oracle_chief.time = types.SimpleNamespace(sleep=lambda seconds: time.sleep(min(seconds, 1.0)))


def _stop_oracle_after(oracle, minutes: float) -> None:
    """On the chief, stop handing out new trials once the wall-clock budget is spent."""
    import threading

    def stop():
        oracle.max_trials = len(oracle.trials)

    timer = threading.Timer(60 * minutes, stop)
    timer.daemon = True
    timer.start()


def _command_line() -> str:
    """The command that made the run, as a user would retype it, for the report."""
    program = Path(sys.argv[0])
    if program.name == "automl":
        return shlex.join(["automl", *sys.argv[1:]])
    if program.suffix == ".py" and program.parent.name == "benchmarks":
        return shlex.join(["python", f"benchmarks/{program.name}", *sys.argv[1:]])
    return "automl search (called from Python)"


def _previous_search_seconds(run_dir: Path) -> float:
    summary = run_dir / "summary.json"
    return records.read_json(summary).get("search_seconds", 0.0) if summary.exists() else 0.0


def finish(run_dir, run_id, config, task, tuner, parts, train, val, index, objective_name,
           search_seconds, *, log=print) -> Path:
    """Pick the best recorded trial on validation, choose the decision rule on validation,
    then score the official test split once and write the summary and plots."""
    trials = records.read_jsonl(run_dir / "trials.jsonl")
    completed = [t for t in trials if t["status"] == "COMPLETED" and objective_name in t["metrics"]]
    failed = [t for t in trials if t["status"] != "COMPLETED"]
    summary = {
        "task": task.name, "run_id": run_id, "config": dataclasses.asdict(config),
        "env": records.environment(),
        "objective": {"name": objective_name, "direction": "max", "value": None},
        "best_trial": None, "threshold": None, "prior_weights": None,
        "trials_completed": len(completed), "trials_failed": len(failed),
        "search_seconds": round(search_seconds, 2),
        "data": {"root": str(index.root), "counts": {k: int(len(v)) for k, v in parts.items()},
                 "problems": index.problems},
        "val": None, "test": None,
    }
    if not completed:
        records.write_json(run_dir / "summary.json", summary)
        log(f"every trial failed ({len(failed)}); see {run_dir / 'trials.jsonl'}")
        raise SystemExit(1)
    best = max(completed, key=lambda t: t["metrics"][objective_name])
    summary["best_trial"] = best["trial_id"]
    summary["best_hparams"] = best["hparams"]
    summary["objective"]["value"] = best["metrics"][objective_name]
    model = tuner.load_model(tuner.oracle.get_trial(best["trial_id"]))
    model.save(run_dir / "best_model.keras")

    y_val = task.labels(val.table)
    # Every choice below (ensemble, threshold, class weights) is made on validation,
    # pooled with its shifted copies under shift validation.
    selection_images = shift.pooled(val.images, val.shifted)
    y_selection = shift.pooled_labels(y_val, val.images, val.shifted)
    selection_scores = task.scores(model, selection_images, hparams=best["hparams"])
    members = [(best, model)]
    if config.ensemble > 1 and task.evaluation != "anomaly":
        members, selection_scores, summary["ensemble"] = _maybe_ensemble(
            tuner, task, completed, objective_name, config.ensemble, (best, model),
            selection_images, y_selection, selection_scores)
    threshold = weights = None
    if task.evaluation in ("binary", "anomaly"):
        threshold = metrics.choose_threshold(y_selection, selection_scores, rule=config.threshold)
    elif task.evaluation == "multiclass":
        weights = metrics.choose_prior_correction(y_selection, selection_scores)
    summary["threshold"] = threshold
    summary["prior_weights"] = None if weights is None else [float(w) for w in weights]
    evaluate = dict(task=task.evaluation, threshold=threshold, weights=weights,
                    class_names=list(task.class_names), seed=config.seed)
    val_scores = selection_scores[:len(y_val)]
    summary["val"] = metrics.evaluate(y_val, val_scores, **evaluate)
    if val.shifted is not None:
        summary["val_shift"] = metrics.evaluate(y_selection, selection_scores, **evaluate)
    score_rows = [_score_rows(val.table, "val", val_scores, index.root)]
    test_table = parts["test"]
    if len(test_table):
        # The only place the official test split is read: after every choice is made.
        test_images = load_images(test_table.path, config.image_size)
        y_test = task.labels(test_table)
        test_scores = np.mean([task.scores(m, test_images, hparams=t["hparams"]) for t, m in members],
                              axis=0)
        summary["test"] = metrics.evaluate(y_test, test_scores, **evaluate)
        score_rows.append(_score_rows(test_table, "test", test_scores, index.root))
        extra = task.extra_metrics(test_table, y_test, test_scores, summary["test"])
        summary["test"].update(extra)
    pd.concat(score_rows).to_csv(run_dir / "scores.csv", index=False)
    records.write_json(run_dir / "summary.json", summary)
    plots.run_plots(run_dir, summary, best, task, model=model,
                    images={"val": val.images, "test": test_images if len(test_table) else None})
    headline = summary["test"] or summary["val"]
    log(f"best trial {best['trial_id']} ({objective_name} {summary['objective']['value']:.4f}); "
        f"{'test' if summary['test'] else 'val'} accuracy {headline['accuracy']:.4f}, "
        f"AUC {headline['auc'] if headline['auc'] is None else round(headline['auc'], 4)}, "
        f"|sens-spec| {headline['bias']['sens_spec_gap']:.4f} -> {run_dir}")
    return run_dir


def _distinct_top(completed: list[dict], objective_name: str, k: int) -> list[dict]:
    """The ``k`` best trials with distinct hyperparameters (Hyperband continues a trial
    under a new id; the copy would add nothing to an ensemble)."""
    chosen, seen = [], set()
    for trial in sorted(completed, key=lambda t: -t["metrics"][objective_name]):
        key = json.dumps({n: v for n, v in trial["hparams"].items() if not n.startswith("tuner/")},
                         sort_keys=True)
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
    return chosen[:k]


def _maybe_ensemble(tuner, task, completed, objective_name, k, best_member, images, y, scores):
    """Average the top-k distinct trials' predictions if that is better *on validation*
    (``images``, ``y``, ``scores``: the selection set and the best model's scores on it).

    Averaging models that fit validation equally well smooths their individual
    over-confidence, which is what hurts on the shifted test split.
    """
    top = _distinct_top(completed, objective_name, k)
    others = [(t, tuner.load_model(tuner.oracle.get_trial(t["trial_id"])))
              for t in top if t["trial_id"] != best_member[0]["trial_id"]]
    members = [best_member, *others]
    averaged = np.mean([scores] + [task.scores(m, images, hparams=t["hparams"]) for t, m in others],
                       axis=0)
    single = task.validation_quality(y, scores)
    combined = task.validation_quality(y, averaged)
    used = len(members) > 1 and combined > single
    record = {"trials": [t["trial_id"] for t, _ in members], "used": used,
              "val_quality_single": single, "val_quality_ensemble": combined,
              "quality": task.objective.removeprefix("val_")}
    return (members, averaged, record) if used else ([best_member], scores, record)


def _score_rows(table: pd.DataFrame, split: str, scores: np.ndarray, root: Path) -> pd.DataFrame:
    """Per-image scores; paths relative to the data folder so records hold no machine paths."""
    frame = table[["path", "label", "subtype", "patient"]].copy()
    frame["path"] = [os.path.relpath(p, root) for p in frame.path]
    frame.insert(0, "split", split)
    scores = np.asarray(scores)
    if scores.ndim == 1:
        frame["score"] = scores
    else:
        for k in range(scores.shape[1]):
            frame[f"score_{k}"] = scores[:, k]
    return frame
