"""How well each candidate compute unit predicts a trial's measured wall time.

For every finished trial of the given real-data runs, the trial's model is rebuilt from its
recorded hyperparameters (no training) and priced in three candidate units:

- ``flops``: training FLOPs counted from the layers (automl.models.cost): 3 forward passes per
  training image, 1 per validation image and per re-acquired copy, per epoch trained;
- ``pixels``: training images seen times pixels per image;
- ``params``: training images seen times parameters.

Each unit's R² is that of a least-squares line (with intercept: a trial's fixed cost of
building, compiling and timing) from the unit to the trial's recorded seconds. Also printed:
the units per minute of the whole search phase (the calibration of the compute budget).

    python benchmarks/compute_unit.py benchmarks/results/runs/binary-study-5b087645/*/ \
        --json benchmarks/results/compute_unit.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np

from automl import records
from automl.data import shift
from automl.models import cost, precision
from automl.records import trials as trial_records
from automl.search.orchestrator import search_space
from automl.settings.run_config import SearchConfig
from automl.tasks import TASKS


# Pneumonia's share of the official train + val images (3,883 of 5,232): the records keep the
# split's size, not its classes, and patient-grouped splits keep this share within a percent.
MAJORITY_SHARE = 3883 / 5232


def train_counts(summary: dict) -> dict:
    """Training images per epoch by balancing (oversampling doubles the majority class)."""
    train = int(summary["data"]["counts"]["train"])
    return {"oversample": int(round(2 * MAJORITY_SHARE * train)), "other": train}


def trial_rows(run_dir: Path) -> list[dict]:
    """One row per finished trial of ``run_dir``: its seconds and its price in each unit."""
    config = SearchConfig.load(run_dir)
    summary = records.read_json(run_dir / "summary.json")
    task = TASKS[config.task]()
    counts = train_counts(summary)
    n_val = int(summary["data"]["counts"]["val"])
    scored = n_val * (1 + shift.COPIES if config.validation == "shift" else 1)
    space = search_space(config, "float32")
    rows = []
    for trial in records.read_jsonl(run_dir / "trials.jsonl"):
        history = trial.get("history") or {}
        epochs = len(history.get("loss") or [])
        if trial["status"] == trial_records.FAILED or not epochs or not trial.get("seconds"):
            continue
        hp = kt.HyperParameters()
        hp.values = {n: v for n, v in trial["hparams"].items() if not n.startswith("tuner/")}
        size = trial_records.trial_image_size(trial) or config.image_size
        keras.backend.clear_session()
        precision.use_policy("float32")
        model = task.build(hp, dataclasses.replace(space, image_size=size))
        trained = counts["oversample" if hp.values.get("balancing") == "oversample" else "other"]
        if config.task == "autoencoder":
            trained = int(summary["data"]["counts"]["train"])
        forward = cost.forward_flops(model)
        rows.append({"run": run_dir.name, "trial": trial["trial_id"], "seconds": float(trial["seconds"]),
                     "epochs": epochs, "image_size": size,
                     "flops": epochs * cost.epoch_units(forward, trained=trained, scored=scored),
                     "pixels": epochs * trained * size * size / 1e9,
                     "params": epochs * trained * model.count_params() / 1e12})
    return rows


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    return float(1 - residual.var() / y.var())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [row for run in args.runs for row in trial_rows(run)]
    seconds = np.array([r["seconds"] for r in rows])
    result = {"runs": sorted({r["run"] for r in rows}), "trials": len(rows),
              "r2": {unit: round(r_squared(np.array([r[unit] for r in rows]), seconds), 4)
                     for unit in ("flops", "pixels", "params")},
              "tflop_per_minute": round(60 * sum(r["flops"] for r in rows) / seconds.sum(), 3),
              "rows": rows}
    print(f"{result['trials']} trials of {len(result['runs'])} runs")
    for unit, value in result["r2"].items():
        print(f"  R² of seconds on {unit:6s}: {value:.3f}")
    print(f"  training TFLOP per trial minute: {result['tflop_per_minute']:.2f}")
    if args.json:
        records.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
