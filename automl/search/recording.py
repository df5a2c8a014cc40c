"""Trial records for any Keras Tuner tuner: one line per trial the moment it ends, its
parameter count, latency and timing, and the memory each trial's graphs would keep."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import keras
import keras_tuner as kt

from automl import records
from automl.records import trials
from automl.search import oracles, portfolio
from automl.search.budget import Budget, now
from automl.settings import choices
from automl.tasks.base import Task


class RecordingMixin:
    """Adds per-trial records, timing and a parameter count to any Keras Tuner tuner.

    Keras Tuner already catches a failing trial and marks it; this mixin writes
    each trial's line the moment it ends (failed ones included), so finished work
    survives any later crash, and skips trials already recorded (a resumed run).
    """

    def setup_recording(self, run_dir: Path, run_id: str, task: Task, *, objective: str,
                        budget: Budget | None = None, portfolio: list[dict] = ()):
        """Record into ``run_dir/trials.jsonl``; end the search once the ``budget`` (less the
        time it keeps for the refit) is spent; ``portfolio``: the warm-start configurations."""
        self._run_dir, self._run_id, self._task = run_dir, run_id, task
        self._portfolio = list(portfolio)  # the warm-start configurations, to name them in records
        self._objective, self._direction = objective, choices.objective_direction(objective)
        self._records_path = run_dir / "trials.jsonl"
        self._started: dict[str, tuple[float, str]] = {}
        self._histories: dict[str, dict] = {}
        self._params: dict[str, int] = {}
        self._models: dict[str, keras.Model] = {}
        self._pruned: dict[str, dict | None] = {}
        self._compute: dict[str, float | None] = {}
        self._budget = budget or Budget()

    def on_trial_begin(self, trial):
        self._started[trial.trial_id] = (now(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
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
        self._budget.trial_recorded()  # nothing charged yet to this trial
        if hasattr(self.hypermodel, "trial_seed"):
            # One seed per trial, from the run's and the trial's id: a trial trains the same
            # whatever ran before it in this process (a resumed run, another worker).
            self.hypermodel.trial_seed = trials.trial_seed(self.hypermodel.space.seed, trial.trial_id)
        results = super().run_trial(trial, *args, **kwargs)
        self._histories[trial.trial_id] = {
            k: [float(v) for v in vals] for k, vals in results[-1].history.items()}
        # The pruning decision of the fit just ended stays on its callback (one trial trains
        # at a time in a process); another library's hypermodel has none.
        pruning = getattr(self.hypermodel, "pruning", None)
        self._pruned[trial.trial_id] = pruning.reason.details if pruning and pruning.reason else None
        meter = getattr(self.hypermodel, "meter", None)
        self._compute[trial.trial_id] = round(meter.units, 6) if meter else None
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
        if self._budget.searching_is_over():
            oracles.end_of_budget(self.oracle)

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
        started, started_at = self._started.pop(trial.trial_id, (now(), None))
        model = self._models.pop(trial.trial_id, None)
        pruned = self._pruned.pop(trial.trial_id, None) if completed else None
        latency = inference_latency_ms(model) if completed and model is not None else None
        hparams = dict(trial.hyperparameters.values)
        image_size = trials.trial_image_size({"hparams": hparams})
        history = self._histories.pop(trial.trial_id, {})
        record = records.trial_record(
            self._run_id, self._task.name, trial.trial_id, worker=self.tuner_id,
            status=trials.PRUNED if pruned else trials.COMPLETED if completed else trials.FAILED,
            error=None if completed else trial.message, hparams=hparams, history=history,
            objective=self._objective, direction=self._direction,
            params=self._params.pop(trial.trial_id, None), latency_ms=latency,
            seconds=now() - started, compute=self._compute.pop(trial.trial_id, None),
            started_at=started_at, image_size=image_size, pruned=pruned,
            stage=trials.stage_of(image_size, self._full_size()),
            portfolio=portfolio.entry_number(self._portfolio, hparams))
        records.append_jsonl(self._records_path, record)
        self._budget.trial_recorded()
        write_trial_status(self._run_dir / "tb", trial.trial_id, record)
        value = record["metrics"].get(self._objective)
        outcome = (f"{self._objective} {value:.4f}" if value is not None
                   else (record["error"] or "no objective").splitlines()[-1])
        size = f", {record['image_size']} px" if record.get("image_size") else ""
        print(f"trial {trial.trial_id} {record['status'].lower()}: {outcome} "
              f"({record['seconds']:.0f} s{size})", flush=True)


def write_trial_status(tb_dir: Path, trial_id: str, record: dict) -> None:
    """Scalars ``trial_pruned`` and ``trial_failed`` (0 or 1) in the trial's TensorBoard
    session, so that the HParams table shows which trials were pruned or failed."""
    import tensorflow as tf

    try:
        with tf.summary.create_file_writer(str(Path(tb_dir) / str(trial_id) / "execution0")).as_default():
            tf.summary.scalar("trial_pruned", float(record["status"] == trials.PRUNED), step=0)
            tf.summary.scalar("trial_failed", float(record["status"] == trials.FAILED), step=0)
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
