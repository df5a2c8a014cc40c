"""Peer baselines on the toolkit's split and budget: AutoKeras ImageClassifier, and the reference recipe.

This script only trains them: each peer's validation and test predictions are written as
prediction files and scored by ``automl evaluate``'s own path, like any other system's."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from automl import records
from automl.data import source
from automl.data.pipeline import load_images, make_dataset
from automl.data.rebuild import RunData
from automl.evaluation.choose import ranked_trials
from automl.evaluation.external import External
from automl.search.budget import Budget

# Same split, records and scoring as a search: the toolkit's public functions, not copies.
from automl.search.callbacks import TrialTimeLimit
from automl.search.finish import finish_external
from automl.search.orchestrator import command_line
from automl.search.recording import RecordingMixin
from automl.settings import choices
from automl.settings.run_config import SearchConfig
from automl.tasks import get_task, task_data

TASK = get_task("binary")
OBJECTIVE = "val_auc"  # peers select on plain validation (they have no shift validation)
BATCH_SIZE = 32
REFERENCE_PATIENCE = 3  # the reference recipe's early stopping; AutoKeras gets the toolkit's
# name on the command line -> (peer name in records, what the leaderboard's "tuner" column says)
PEERS = {"autokeras": ("autokeras", "autokeras-greedy"),
         "reference": ("reference-recipe", "none (fixed recipe)")}
REFERENCE_HPARAMS = {"family": "reference-cnn", "filters": "32-64-128-128", "kernel_size": 3,
                     "batch_norm": True, "dropout": 0.5, "embedding_units": 128, "optimizer": "adam",
                     "learning_rate": 1e-3, "balancing": "oversample", "augment": 0.0,
                     "batch_size": BATCH_SIZE}


@dataclass
class Data:
    """The toolkit's split: the run's data (rows per split) and decoded train/val images (uint8 N×S×S×1)."""

    run: RunData
    parts: dict[str, pd.DataFrame]
    train: np.ndarray
    val: np.ndarray


def load_data(root: Path | None, image_size: int, seed: int, *, smoke: bool = False) -> Data:
    """Scan, split by patient and decode exactly as ``automl search`` does; test stays unread."""
    _, run = task_data(SearchConfig(task=TASK.name, data=str(root) if root else None, seed=seed,
                                    image_size=image_size, smoke=smoke), log=lambda line: None)
    return Data(run, run.parts, load_images(run.parts["train"].path, image_size),
                load_images(run.parts["val"].path, image_size))


def reference_model(image_size: int) -> keras.Model:
    """The reference notebook's hand-designed CNN: four conv-BN-pool blocks, dense 128, dropout, sigmoid."""
    layers = keras.layers
    inputs = keras.Input((image_size, image_size, 1))
    x = inputs
    for filters in (32, 64, 128, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Dense(128, activation="relu", name="embedding")(layers.Flatten()(x))
    outputs = layers.Dense(1, activation="sigmoid", name="prediction")(layers.Dropout(0.5)(x))
    model = keras.Model(inputs, outputs, name="reference_cnn")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")])
    return model


def run_reference(args, data: Data, run_dir: Path, run_id: str, config: dict) -> tuple[keras.Model, str]:
    """Train the fixed recipe once (oversampled to class parity); returns the model and its trial id."""
    started, started_at = time.time(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    model = reference_model(args.image_size)
    train = make_dataset(data.train, TASK.targets(data.parts["train"]), batch_size=BATCH_SIZE,
                         training=True, oversample=True, seed=args.seed)
    val = make_dataset(data.val, TASK.targets(data.parts["val"]), batch_size=128)
    callbacks = [keras.callbacks.EarlyStopping(OBJECTIVE, mode="max", patience=REFERENCE_PATIENCE,
                                               restore_best_weights=True), TrialTimeLimit(args.trial_minutes)]
    fit = model.fit(train, validation_data=val, epochs=args.epochs, callbacks=callbacks, verbose=2)
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    records.append_jsonl(run_dir / "trials.jsonl", trial_record(
        run_id, "0", REFERENCE_HPARAMS, history=history, params=model.count_params(),
        seconds=time.time() - started, started_at=started_at))
    return model, "0"  # it has an `embedding` layer, so `make embed` works on its saved model


@contextlib.contextmanager
def autokeras_compat():
    """Compatibility shim for AutoKeras 3.0.0 under Keras 3.15 (undone on exit).

    AutoKeras records data shapes as numpy arrays (``data_utils.dataset_shape``), so its
    classification head calls ``Dense(units=numpy.int64(1))``, which Keras 3.15 rejects
    (``isinstance(units, int)`` fails: "expected a positive integer"). Casting the shapes to
    Python ints where AutoKeras stores them (``Graph.set_io_shapes``) fixes every block at the
    source without patching Keras.
    """
    from autokeras import graph

    original = graph.Graph.set_io_shapes

    def set_io_shapes(self, shapes):
        original(self, shapes)
        for node in self.inputs:
            node.shape = tuple(int(d) for d in node.shape)
        for node in self.outputs:
            node.in_blocks[0].shape = tuple(int(d) for d in node.in_blocks[0].shape)

    graph.Graph.set_io_shapes = set_io_shapes
    try:
        yield
    finally:
        graph.Graph.set_io_shapes = original


def run_autokeras(args, data: Data, run_dir: Path, run_id: str, config: dict) -> tuple[keras.Model, str]:
    """AutoKeras' default image search (greedy tuner) on the same split, objective val AUC."""
    import autokeras as ak
    import keras_tuner as kt
    from autokeras.tuners.task_specific import ImageClassifierTuner

    # The toolkit's RecordingMixin writes each AutoKeras trial to trials.jsonl the moment it ends.
    tuner = type("RecordingImageClassifierTuner", (RecordingMixin, ImageClassifierTuner), {})
    with autokeras_compat():
        clf = ak.ImageClassifier(
            max_trials=args.max_trials, directory=str(run_dir / "autokeras"), overwrite=True,
            seed=args.seed, tuner=tuner, objective=kt.Objective(OBJECTIVE, "max"),
            metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")])
        # With --time-budget, AutoKeras searches until the budget is spent (max_trials is
        # then only a cap), under the same wall-clock rule as ``automl search``.
        budget = Budget(args.time_budget)
        clf.tuner.setup_recording(run_dir, run_id, TASK, objective=OBJECTIVE, budget=budget)
        # Our own EarlyStopping also stops AutoKeras from retraining the winner on train
        # without validation at the end: the epoch, like the trial, is chosen on validation.
        callbacks = [keras.callbacks.EarlyStopping(OBJECTIVE, mode="max", patience=config["patience"],
                                                   restore_best_weights=True),
                     TrialTimeLimit(args.trial_minutes, budget)]
        clf.fit(data.train.astype(np.float32) / 255.0, TASK.labels(data.parts["train"]),
                validation_data=(data.val.astype(np.float32) / 255.0, TASK.labels(data.parts["val"])),
                epochs=args.epochs, callbacks=callbacks, verbose=2)
        model = clf.export_model()
    return model, str(clf.tuner.oracle.get_best_trials(1)[0].trial_id)


RUNNERS = {"autokeras": run_autokeras, "reference": run_reference}


def trial_record(run_id: str, trial_id: str, hparams: dict, *, history: dict | None = None,
                 params: int | None = None, seconds: float = 0.0, started_at: str | None = None,
                 error: str | None = None) -> dict:
    """One trials.jsonl line in the search's format (FAILED when ``error`` is given)."""
    return records.trial_record(run_id, TASK.name, trial_id, hparams=hparams, history=history or {},
                                objective=OBJECTIVE, direction=choices.objective_direction(OBJECTIVE),
                                status="FAILED" if error else "COMPLETED", error=error, params=params,
                                seconds=seconds, started_at=started_at)


def run_peer(name: str, args, data: Data, command: str) -> dict:
    """Train one peer into a new run folder, then score it like ``automl search``; returns the summary."""
    peer, tuner = PEERS[name]
    run_id = records.new_run_id(f"{peer}-binary")
    run_dir = Path(args.out) / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "command.txt").write_text(command + "\n")
    config = {"peer": peer, "task": TASK.name, "tuner": tuner,
              "max_trials": 1 if name == "reference" else args.max_trials, "epochs": args.epochs,
              "image_size": args.image_size, "seed": args.seed, "data": data.run.config.data,
              "val_fraction": choices.VAL_FRACTION, "threshold": choices.DEFAULT_THRESHOLD,
              "batch_size": BATCH_SIZE, "ensemble": 1, "validation": "plain",
              "patience": REFERENCE_PATIENCE if name == "reference" else choices.PATIENCE,
              "trial_minutes": args.trial_minutes, "out": args.out,
              "time_budget_minutes": None if name == "reference" else args.time_budget}
    records.write_json(run_dir / "config.json", config)
    records.write_environment(run_dir)
    print(f"{peer}: run folder {run_dir}")
    keras.utils.clear_session()  # the previous peer's models must not share graphs or memory
    keras.utils.set_random_seed(args.seed)
    started = time.time()
    model = best_id = None
    try:
        model, best_id = RUNNERS[name](args, data, run_dir, run_id, config)
    except Exception as error:  # a peer that cannot run is a FAILED row, never a crash (timm style)
        print(f"{peer} failed: {error!r}", file=sys.stderr)
        if not records.read_jsonl(run_dir / "trials.jsonl"):
            records.append_jsonl(run_dir / "trials.jsonl", trial_record(
                run_id, "0", REFERENCE_HPARAMS if name == "reference" else {},
                seconds=time.time() - started, error=traceback.format_exc()))
    return finish(run_dir, config, data, model=model, best_id=best_id, seconds=time.time() - started)


def finish(run_dir: Path, config: dict, data: Data, *, model: keras.Model | None, best_id: str | None,
           seconds: float) -> dict:
    """Write the peer's validation and test predictions and score them through ``automl evaluate``'s
    path (its threshold chosen on its validation predictions, test scored once). Returns the
    summary (without results when the peer produced no model)."""
    trials = records.read_jsonl(run_dir / "trials.jsonl")
    best = next((t for t in ranked_trials(trials, OBJECTIVE) if str(t["trial_id"]) == str(best_id)), None)
    extra = {"peer": config["peer"], "search_seconds": round(seconds, 2),
             "trials_completed": sum(t["status"] == "COMPLETED" for t in trials),
             "trials_failed": sum(t["status"] == "FAILED" for t in trials)}
    if model is None or best is None:
        summary = records.new_summary(run_dir.name, TASK.name, config, env=records.run_environment(run_dir),
                                      objective=OBJECTIVE, direction="max", data_root=data.run.index.root,
                                      counts={k: len(v) for k, v in data.parts.items()}, problems=[])
        records.write_json(run_dir / "summary.json", {**summary, **extra})
        return {**summary, **extra}
    model.save(run_dir / "best_model.keras")
    files = {}
    for split, images in (("val", data.val), ("test", None)):
        images = load_images(data.parts["test"].path, config["image_size"]) if images is None else images
        rows = records.score_rows(data.parts[split], split, TASK.scores(model, images), data.run.index.root)
        files[split] = run_dir / f"predictions_{split}.csv"
        rows[["path", "score"]].to_csv(files[split], index=False)
    extra.update(objective={"name": OBJECTIVE, "direction": "max", "value": best["metrics"][OBJECTIVE]},
                 best_trial=best["trial_id"], best_hparams=best["hparams"], best_params=best.get("params"))
    request = External(task=TASK.name, predictions=files["test"], val_predictions=files["val"],
                       name=config["peer"], data=data.run.config.data, seed=config["seed"],
                       threshold=config["threshold"], run_dir=run_dir, config_extra=config,
                       summary_extra=extra)
    return finish_external(request, best=best, trials=trials,
                           log=lambda line: print(f"{config['peer']}: {line}"))


def main(argv: list[str] | None = None) -> int:
    """Run the chosen peers; exit status 1 when any of them produced no scored model."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", help="chest_xray folder (default: $CXR_DATA_DIR, then data/chest_xray)")
    parser.add_argument("--task", default="binary", choices=["binary"])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trial-minutes", type=float, default=choices.BUDGETS["real"]["trial_minutes"],
                        help="stop a trial's training after this many minutes (checked per epoch; 0: none)")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="AutoKeras searches for this many wall minutes (as `automl search "
                             "--time-budget`), with --max-trials only as a cap; the campaign gives it "
                             "the default search's budget")
    parser.add_argument("--out", default="benchmarks/results/runs")
    parser.add_argument("--which", default="autokeras,reference", help="comma-separated: autokeras,reference")
    parser.add_argument("--smoke", action="store_true", help="synthetic data, 1 trial, 1 epoch, 32 px")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.which.split(",") if n.strip()]
    if unknown := sorted(set(names) - set(PEERS)):
        parser.error(f"unknown peer(s) {unknown}; choose from {', '.join(PEERS)}")
    if args.smoke:
        args.max_trials, args.epochs, args.image_size = 1, 1, 32
    command = command_line() if argv is None else shlex.join(["python", "benchmarks/bench_peers.py", *argv])
    root = None if args.smoke else source.resolve(args.data, download=False).path
    data = load_data(root, args.image_size, args.seed, smoke=args.smoke)
    summaries = [run_peer(name, args, data, command) for name in names]
    return 1 if any(s["val"] is None for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
