"""How well each candidate compute unit predicts a trial's measured wall time.

For every finished trial of the given real-data runs, the trial's model is rebuilt from its
recorded hyperparameters (no training) and priced in four candidate units:

- ``compute``: the compute budget's unit (automl.models.cost): ``flops`` plus a fixed charge per
  training pixel for the input pipeline;
- ``flops``: training FLOPs counted from the layers: 3 forward passes per training image, 1 per
  validation image and per re-acquired copy, per epoch trained;
- ``pixels``: training images seen times pixels per image;
- ``params``: training images seen times parameters.

Each unit's R² is that of a least-squares line (with intercept: a trial's fixed cost of
building, compiling and timing) from the unit to the trial's recorded seconds. Also printed:
compute units per minute of training (the calibration of the compute budget). The pixel charge
was fitted on binary-study-5b087645; binary-study-fa471c6e is the held-out check.

    python benchmarks/compute_unit.py benchmarks/results/runs/binary-study-fa471c6e \
        benchmarks/results/runs/binary-study-5b087645 benchmarks/results/runs/multiclass-study-743d5848 \
        benchmarks/results/runs/autoencoder-study-a0984a83 --json benchmarks/results/compute_unit.json
"""

from __future__ import annotations

import argparse
import dataclasses
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
        layers_only = epochs * cost.epoch_units(forward, trained=trained, scored=scored, pixels=0)
        rows.append({"run": run_dir.name, "trial": trial["trial_id"], "seconds": float(trial["seconds"]),
                     "epochs": epochs, "image_size": size,
                     "compute": epochs * cost.epoch_units(forward, trained=trained, scored=scored,
                                                          pixels=size * size),
                     "flops": layers_only,
                     "pixels": epochs * trained * size * size / 1e9,
                     "params": epochs * trained * model.count_params() / 1e12})
    return rows


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    return float(1 - residual.var() / y.var())


def study_result(study: Path) -> dict:
    """R² of each unit over the trials of the runs in ``study`` (a study folder or one run)."""
    runs = sorted(p.parent for p in study.glob("*/summary.json")) or [study]
    rows = [row for run in runs for row in trial_rows(run)]
    seconds = np.array([r["seconds"] for r in rows])
    return {"study": study.name, "runs": [r.name for r in runs], "trials": len(rows),
            "r2": {unit: round(r_squared(np.array([r[unit] for r in rows]), seconds), 4) for unit in UNITS},
            "units_per_trial_minute": round(60 * sum(r["compute"] for r in rows) / seconds.sum(), 2)}


UNITS = ("compute", "flops", "pixels", "params")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", type=Path, help="study folders (or run folders)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = {"studies": [study_result(study) for study in args.studies]}
    for row in result["studies"]:
        print(f"{row['study']}: {row['trials']} trials; R² " +
              ", ".join(f"{unit} {value:.3f}" for unit, value in row["r2"].items()) +
              f"; {row['units_per_trial_minute']:.1f} compute units per trial minute")
    if args.json:
        records.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
