"""Keras Tuner glue: the hypermodel adapter, trial records, the tuner factory, time limits, chief patches."""

from __future__ import annotations

import dataclasses
import gc
import signal
import time
from pathlib import Path

import keras
import keras_tuner as kt

from automl import records
from automl.models import backbones
from automl.search import portfolio, promotion, pruners
from automl.settings import choices
from automl.settings.run_config import SearchConfig
from automl.tasks.base import SearchSpace, SplitData, Task


class RunInterrupted(BaseException):
    """SIGINT/SIGTERM during a search.

    A BaseException, like KeyboardInterrupt, so that Keras Tuner's per-trial
    ``except Exception`` does not record it as a failed trial and carry on.
    """


# The signals received since the handlers were installed. A signal whose exception is raised
# while Python runs a finaliser (a dataset iterator's ``__del__`` between trials) is printed as
# "Exception ignored" and lost: the search would go on and end with status 0. What is kept
# here is raised again at the next batch end (:class:`InterruptCheck`) or when the search ends.
_received: list[str] = []


def install_interrupt_handlers() -> dict:
    """Turn SIGINT/SIGTERM into :class:`RunInterrupted`; returns the previous handlers."""
    _received.clear()
    return {s: signal.signal(s, raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}


def raise_interrupted(signum, frame):
    """Signal handler: turn SIGINT/SIGTERM into :class:`RunInterrupted`, and remember it."""
    _received.append(signal.Signals(signum).name)
    raise RunInterrupted(_received[-1])


def check_interrupted() -> None:
    """Raise :class:`RunInterrupted` if a signal arrived, even one whose exception was lost."""
    if _received:
        raise RunInterrupted(_received[-1])


class InterruptCheck(keras.callbacks.Callback):
    """Raise an interruption that a finaliser swallowed at the next batch end."""

    def on_train_batch_end(self, batch, logs=None):
        check_interrupted()


class TrialTimeLimit(keras.callbacks.Callback):
    """Stop a trial's training after ``minutes`` of wall time, or at the wall-clock time
    ``stop_at`` (seconds since the epoch), whichever is first; the best epoch is kept.

    One slow configuration must not eat the whole search budget on a CPU, and the
    trial running when the search budget ends must not overrun it by much.

    With a refit to follow, ``reserve_from`` is the budget's end and ``reserve()`` the
    seconds the refit needs: a trial that starts before ``reserve_from - reserve()``
    stops at the last epoch end before that point (when another epoch as long as the
    last would cross it), so the refit gets the time kept for it (a trial that starts
    after it is the final full-size retraining, limited by ``stop_at``). Stopping only
    once the point had passed cost the refit up to an epoch: in one run
    two folds of the next best configuration needed 6.2 minutes
    and 5.8 were left, so the refit was skipped.
    """

    def __init__(self, minutes: float | None, stop_at: float | None = None, *,
                 reserve_from: float | None = None, reserve=None):
        super().__init__()
        self.minutes, self.stop_at = minutes, stop_at
        self.reserve_from, self.reserve = reserve_from, reserve

    def on_train_begin(self, logs=None):
        self.started = self.epoch_started = time.time()
        self.refit_from = None
        if self.reserve_from and self.reserve:
            reserved = self.reserve()
            if reserved > 0 and self.started < self.reserve_from - reserved:
                self.refit_from = self.reserve_from - reserved

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        now = time.time()
        last_epoch = now - self.epoch_started
        if self.minutes and now - self.started > 60 * self.minutes:
            print(f"trial stopped: over its {self.minutes:g}-minute limit")
            self.model.stop_training = True
        elif self.stop_at and now > self.stop_at:
            print("trial stopped: the search's time budget is spent")
            self.model.stop_training = True
        elif self.refit_from and now + last_epoch > self.refit_from:
            print("trial stopped: the time kept for the refit begins before another epoch would end")
            self.model.stop_training = True


def end_of_budget(oracle) -> None:
    """The wall-clock budget is spent: the oracle reports STOPPED on the next request, after
    one last trial if screening has not yet retrained any configuration at full size (a
    search must end with a model at the size it was asked for; the trial-time limit cuts
    that trial at the budget's allowed overrun)."""
    if getattr(oracle, "needs_final_promotion", None) and not oracle.force_promotion \
            and oracle.needs_final_promotion():
        oracle.force_promotion = True
        oracle.max_trials = len(oracle.trials) + 1
        print("time budget spent before any full-size trial: retraining the best screened "
              "configuration at full size", flush=True)
    else:
        oracle.max_trials = len(oracle.trials)


class RecordingMixin:
    """Adds per-trial records, timing and a parameter count to any Keras Tuner tuner.

    Keras Tuner already catches a failing trial and marks it; this mixin writes
    each trial's line the moment it ends (failed ones included), so finished work
    survives any later crash, and skips trials already recorded (a resumed run).
    """

    def setup_recording(self, run_dir: Path, run_id: str, task: Task, *, objective: str,
                        time_budget_minutes: float | None = None, portfolio: list[dict] = ()):
        self._run_dir, self._run_id, self._task = run_dir, run_id, task
        self._portfolio = list(portfolio)  # the warm-start configurations, to name them in records
        self._objective, self._direction = objective, choices.objective_direction(objective)
        self._records_path = run_dir / "trials.jsonl"
        self._started: dict[str, tuple[float, str]] = {}
        self._histories: dict[str, dict] = {}
        self._params: dict[str, int] = {}
        self._models: dict[str, keras.Model] = {}
        self._deadline = time.time() + 60 * time_budget_minutes if time_budget_minutes else None
        # Seconds to keep free at the end of the budget (the cross-validated refit's estimate).
        self.reserve_seconds = lambda: 0.0

    def on_trial_begin(self, trial):
        self._started[trial.trial_id] = (time.time(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self._gradients_before = _custom_gradient_names()
        super().on_trial_begin(trial)

    def _try_build(self, hp):
        model = super()._try_build(hp)
        trial_id = getattr(self, "_current_trial_id", None)
        if trial_id is not None:
            self._params[trial_id] = int(model.count_params())
            self._models[trial_id] = model  # the object Keras Tuner trains: timed when it ends
        return model

    def run_trial(self, trial, *args, **kwargs):
        self._current_trial_id = trial.trial_id
        results = super().run_trial(trial, *args, **kwargs)
        self._histories[trial.trial_id] = {
            k: [float(v) for v in vals] for k, vals in results[-1].history.items()}
        return results

    def on_trial_end(self, trial):
        # The record first, then the oracle: a worker killed in between leaves a trial that
        # the chief hands out again (its rerun finds the record and keeps it), never a
        # finished trial without a record.
        self._record(trial)
        super().on_trial_end(trial)
        # Free this trial's traced graphs now (see _forget_custom_gradients): without
        # it every trial's train step stayed in memory for the rest of the search.
        _forget_custom_gradients(getattr(self, "_gradients_before", None))
        gc.collect()
        if self._deadline and time.time() > self._deadline - self.reserve_seconds():
            end_of_budget(self.oracle)

    def _full_size(self) -> int | None:
        """The run's image size; None for a tuner over another library's hypermodel (the
        AutoKeras peer records its trials through this mixin too)."""
        space = getattr(self.hypermodel, "space", None)
        return getattr(space, "image_size", None)

    def _record(self, trial) -> None:
        """Append the trial's line to ``trials.jsonl`` (once) and print its one-line result."""
        recorded = {r["trial_id"] for r in records.read_jsonl(self._records_path)}
        if trial.trial_id in recorded:
            return
        completed = trial.status == kt.engine.trial.TrialStatus.COMPLETED
        started, started_at = self._started.pop(trial.trial_id, (time.time(), None))
        model = self._models.pop(trial.trial_id, None)
        pruned = getattr(model, "pruned", None) if completed else None
        latency = inference_latency_ms(model) if completed and model is not None else None
        hparams = dict(trial.hyperparameters.values)
        history = self._histories.pop(trial.trial_id, {})
        record = records.trial_record(
            self._run_id, self._task.name, trial.trial_id, worker=self.tuner_id,
            status="PRUNED" if pruned else "COMPLETED" if completed else "FAILED",
            error=None if completed else trial.message, hparams=hparams, history=history,
            objective=self._objective, direction=self._direction,
            params=self._params.pop(trial.trial_id, None), latency_ms=latency,
            seconds=time.time() - started, started_at=started_at,
            image_size=hparams.get("image_size"), pruned=pruned,
            stage=stage_of(hparams.get("image_size"), self._full_size()),
            portfolio=portfolio.entry_number(self._portfolio, hparams))
        records.append_jsonl(self._records_path, record)
        write_trial_status(self._run_dir / "tb", trial.trial_id, record)
        value = record["metrics"].get(self._objective)
        outcome = (f"{self._objective} {value:.4f}" if value is not None
                   else (record["error"] or "no objective").splitlines()[-1])
        size = f", {record['image_size']} px" if record.get("image_size") else ""
        print(f"trial {trial.trial_id} {record['status'].lower()}: {outcome} "
              f"({record['seconds']:.0f} s{size})", flush=True)


def stage_of(image_size: int | None, full_size: int | None) -> str:
    """``screen`` for a trial below the run's image size (multi-fidelity), else ``full``."""
    return "screen" if image_size and full_size and image_size < full_size else "full"


def write_trial_status(tb_dir: Path, trial_id: str, record: dict) -> None:
    """Scalars ``trial_pruned`` and ``trial_failed`` (0 or 1) in the trial's TensorBoard
    session, so that the HParams table shows which trials were pruned or failed."""
    import tensorflow as tf

    try:
        with tf.summary.create_file_writer(str(Path(tb_dir) / str(trial_id) / "execution0")).as_default():
            tf.summary.scalar("trial_pruned", float(record["status"] == "PRUNED"), step=0)
            tf.summary.scalar("trial_failed", float(record["status"] == "FAILED"), step=0)
    except Exception as error:  # TensorBoard is a view; the record is what counts
        print(f"TensorBoard status of trial {trial_id} not written: {error}")


def inference_latency_ms(model: keras.Model, *, warmup: int = 3, repeats: int = 15) -> float | None:
    """Median wall time of one forward pass of one image (batch 1, inference mode), in ms:
    what a user who scores images one by one on this machine waits per image."""
    import numpy as np

    try:
        x = np.zeros((1, *model.inputs[0].shape[1:]), np.float32)
        for _ in range(warmup):
            model(x, training=False)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            model(x, training=False)
            times.append(time.perf_counter() - started)
    except Exception:  # a model that cannot run eagerly has no latency, not a failed trial
        return None
    return round(1000 * float(np.median(times)), 3)


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


class TaskHyperModel(kt.HyperModel):
    """Keras Tuner's view of a task: build from ``hp``, fit on the task's splits.

    ``data`` maps each image size a trial may train at (the run's, and the screening
    size under multi-fidelity) to its (train, validation) splits; a trial's size is its
    ``image_size`` hyperparameter. ``prune``: the median stopping rule reads finished
    trials from ``records_path``.
    """

    def __init__(self, task: Task, space: SearchSpace, data: dict[int, tuple[SplitData, SplitData]], *,
                 screen_size: int | None = None, prune: str = "none", records_path: Path | None = None):
        super().__init__(name=task.name)
        self.task, self.space, self.data = task, space, data
        self.screen_size, self.prune, self.records_path = screen_size, prune, records_path
        # True while Keras Tuner builds models only to discover the search space.
        self.discovering = False

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        for name, value in self.space.fixed.items():
            hp.Fixed(name, value)
        # New trials start at the screening size; full-size retraining overrides it.
        hp.Fixed("image_size", self.screen_size or self.space.image_size)
        if self.screen_size and "stem_stride" not in self.space.fixed:
            # The architecture is the full-size one at every size: a screened model is the
            # model that would be retrained, on a quarter of the pixels (and of the compute).
            hp.Fixed("stem_stride", backbones.stem_stride(self.space.image_size))
        conv = set(self.space.families) - set(backbones.APPLICATIONS)
        if self.screen_size and conv and "blocks" not in self.space.fixed:
            # Declared first, this range holds at every size: only configurations that can be
            # screened are drawn (6 blocks after a stride-2 stem cannot be built at 64 px;
            # every such trial used to fail).
            most = backbones.max_blocks(self.screen_size, hp.values["stem_stride"])
            hp.Int("blocks", backbones.MIN_BLOCKS, most, default=min(4, most))

    def trial_size(self, hp) -> int:
        return int(hp.values.get("image_size") or self.space.image_size)

    def build(self, hp):
        space = dataclasses.replace(self.space, image_size=self.trial_size(hp))
        # Keras Tuner clears the Keras session before every build, and with it the global
        # dtype policy: set it again for this trial's model.
        keras.mixed_precision.set_global_policy(self.space.dtype_policy)
        try:
            model = self.task.build(hp, space)
        except ValueError:
            if not self.discovering:
                raise  # a real trial: Keras Tuner records it as failed
            # The default configuration may be unbuildable for this image size;
            # that must fail a trial, not the whole search.
            return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        if self.space.jit_compile != "auto":
            model.jit_compile = self.space.jit_compile
        return model

    def fit(self, hp, model, *args, **kwargs):
        # One line per epoch is the progress a user watches, whatever Keras Tuner's verbosity.
        kwargs["verbose"] = 2
        size = self.trial_size(hp)
        train, val = self.data[size]
        if self.prune == "median" and self.records_path is not None:
            promoted = bool(self.screen_size) and size != self.screen_size
            judge = (dict(warmup_trials=choices.PRUNE_WARMUP_FULL_TRIALS,
                          min_epoch=max(choices.PRUNE_MIN_EPOCH, int(kwargs.get("epochs") or 0) // 2))
                     if promoted else {})
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), pruners.MedianStopping(
                self.records_path, self.space.objective, image_size=size, **judge),
                pruners.ChanceStopping()]
        space = dataclasses.replace(self.space, image_size=size)
        return self.task.fit(hp, model, train, val, space, **kwargs)


def show_failed_trial_tracebacks(show: bool) -> None:
    """Keras Tuner prints the whole traceback of every failed trial; the record keeps it and
    the console gets one line (``-v`` brings the tracebacks back)."""
    from keras_tuner.src import config as kt_config

    kt_config.DEBUG = show


def tuner_class(name: str) -> type:
    """The Keras Tuner class called ``name`` (:data:`automl.settings.choices.TUNERS`), recording
    its trials."""
    base = {"hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization,
            "random": kt.RandomSearch, "grid": kt.GridSearch}[name]
    return type(f"Recording{base.__name__}", (RecordingMixin, base), {})


def build_tuner(config: SearchConfig, hypermodel: TaskHyperModel, run_dir: Path, *, objective: str,
                overwrite: bool):
    """The configured tuner over ``hypermodel``, its state in ``run_dir/tuner``, recording trials."""
    hypermodel.discovering = True
    common = dict(objective=kt.Objective(objective, direction=choices.objective_direction(objective)),
                  directory=str(run_dir), project_name="tuner", seed=config.seed,
                  overwrite=overwrite, max_consecutive_failed_trials=10**6)
    if config.strategy == "mirrored":
        import tensorflow as tf

        # Several GPUs per worker: each trial's model is replicated across them.
        common["distribution_strategy"] = tf.distribute.MirroredStrategy()
    cls = tuner_class(config.tuner)
    if config.tuner == "hyperband":
        tuner = cls(hypermodel, max_epochs=max(config.epochs, 1), factor=3,
                    hyperband_iterations=10**6, **common)
        # Hyperband sizes itself from max_epochs; cap it at the trial budget too.
        tuner.oracle.max_trials = config.max_trials
    else:
        tuner = cls(hypermodel, max_trials=config.max_trials, **common)
    if config.screen_size:
        oracle = tuner.oracle
        oracle.__class__ = type(f"SizePromoting{type(oracle).__name__}",
                                (promotion.SizePromotionMixin, type(oracle)), {})
        def seconds(minutes):
            return 60 * minutes if minutes else None

        oracle.setup_promotion(screen_size=config.screen_size, full_size=config.image_size,
                               max_epochs=max(config.epochs, 1), hyperband=config.tuner == "hyperband",
                               records_path=run_dir / "trials.jsonl",
                               budget_seconds=seconds(config.time_budget_minutes),
                               members=config.ensemble or 1, trial_seconds=seconds(config.trial_minutes))
    configurations = []
    if config.portfolio == "on" and config.tuner != "grid":  # a grid has no random draws
        configurations = [e["values"] for e in portfolio.entries(config.task)]
        oracle = tuner.oracle
        oracle.__class__ = type(f"Portfolio{type(oracle).__name__}",
                                (portfolio.PortfolioMixin, type(oracle)), {})
        oracle.setup_portfolio(configurations)
    hypermodel.discovering = False
    tuner.setup_recording(run_dir, run_dir.name, hypermodel.task, objective=objective,
                          time_budget_minutes=config.time_budget_minutes, portfolio=configurations)
    return tuner


def trial_callbacks(config: SearchConfig, run_dir: Path, objective: str, *, reserve=None) -> list:
    """Early stopping on the objective, NaN guard, time limits, TensorBoard and the interrupt
    check for every trial. ``reserve()``: the seconds to keep free at the end of the budget
    (see :class:`TrialTimeLimit`)."""
    stop_at = end = None
    if config.time_budget_minutes:
        minutes = config.time_budget_minutes
        end = time.time() + 60 * minutes
        stop_at = end + 60 * choices.overrun_minutes(minutes)
    return [
        keras.callbacks.EarlyStopping(monitor=objective, mode=choices.objective_direction(objective),
                                      patience=config.patience, restore_best_weights=True),
        keras.callbacks.TerminateOnNaN(),
        TrialTimeLimit(config.trial_minutes, stop_at=stop_at, reserve_from=end, reserve=reserve),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tb"), write_graph=False, profile_batch=0),
        InterruptCheck(),
    ]


def make_chief(oracle, time_budget_minutes: float | None) -> None:
    """Patches for the chief of a distributed search: poll workers every second (Keras
    Tuner waits 20 s once the budget is spent, so a search would end long after its last
    trial), and stop handing out trials once the wall-clock budget is spent."""
    import threading
    import types

    from keras_tuner.src.distribute import oracle_chief

    oracle_chief.time = types.SimpleNamespace(sleep=lambda seconds: time.sleep(min(seconds, 1.0)))
    if time_budget_minutes:
        timer = threading.Timer(60 * time_budget_minutes, end_of_budget, args=(oracle,))
        timer.daemon = True
        timer.start()
