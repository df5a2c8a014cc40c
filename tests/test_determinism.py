"""The compute budget and deterministic training: the same command trains the same models."""

import csv
import json
import subprocess
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest

from automl import records
from automl.models import cost
from automl.records import trials as trial_records
from automl.search.budget import Budget
from automl.search.callbacks import TrialTimeLimit
from automl.settings import choices
from automl.settings.run_config import SearchConfig


def test_layers_are_counted_exactly():
    model = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Conv2D(4, 3, padding="same"),   # 2*64*4*9*1 = 4608
                              keras.layers.ReLU(),                          # 256 elements
                              keras.layers.SeparableConv2D(2, 3, padding="same"),  # 2*64*4*9 + 2*64*4*2
                              keras.layers.GlobalAveragePooling2D(),        # reads 128 elements
                              keras.layers.Dense(3)])                       # 2*2*3
    assert cost.forward_flops(model) == 4608 + 256 + (4608 + 1024) + 128 + 12
    units = cost.epoch_units(1_000_000, trained=10, scored=5, pixels=64)
    assert units == pytest.approx((1e6 * (3 * 10 + 5) + cost.PIXEL_FLOPS * 64 * 10) / 1e12)


def test_each_trial_has_its_own_seed_from_the_run_seed_and_its_id():
    seeds = {trial_records.trial_seed(run, trial) for run in (0, 1) for trial in ("00", "01", "02")}
    assert len(seeds) == 6
    assert trial_records.trial_seed(0, "01") == trial_records.trial_seed(0, "01")


def _records(path: Path, rows: list[dict]) -> Path:
    for row in rows:
        records.append_jsonl(path, row)
    return path


def test_a_compute_budget_counts_every_recorded_trial_and_the_running_one(tmp_path):
    path = _records(tmp_path / "trials.jsonl", [{"trial_id": "0", "compute": 40.0},
                                                {"trial_id": "1", "compute": 30.0}])
    budget = Budget(units=100.0, records_path=path, reserve=lambda: 20.0)
    assert (budget.key, budget.end(), budget.stop_at()) == ("compute", 100.0, 110.0)
    assert not budget.searching_is_over()  # 70 spent, 80 before what the refit keeps
    budget.charge(15.0)
    assert budget.clock() == 85.0 and budget.searching_is_over()
    assert budget.left_for_refit() == pytest.approx(25.0)
    budget.trial_recorded()  # its record now holds the 15
    assert budget.clock() == 70.0
    assert budget.trial_limit(2.0) == 2.0 * choices.UNITS_PER_MINUTE
    assert Budget(minutes=3.0).trial_limit(2.0) == 120.0


def test_a_trial_stops_at_the_epoch_end_before_it_would_cross_the_compute_budget(tmp_path, monkeypatch):
    monkeypatch.setattr("automl.search.budget.now", lambda: pytest.fail("a compute budget read the clock"))
    budget = Budget(units=100.0, records_path=tmp_path / "trials.jsonl")
    limit = TrialTimeLimit(None, budget)
    limit.set_model(types.SimpleNamespace(stop_training=False))
    limit.on_train_begin()
    stopped_after = None
    for epoch in range(20):
        limit.on_epoch_begin(epoch)
        budget.charge(24.0)  # what ComputeMeter charges at the epoch end, before this callback
        limit.on_epoch_end(epoch)
        if limit.model.stop_training:
            stopped_after = epoch
            break
    # 4 epochs spend 96; a fifth would reach 120, past the end plus its overrun (110).
    assert stopped_after == 3 and budget.clock() == 96.0


def test_budget_options_are_one_or_the_other_and_a_study_defaults_to_compute():
    from automl.search.study import study_config

    config = SearchConfig(budget="compute:300").with_defaults(synthetic=False)
    assert (config.compute_units, config.time_budget_minutes, config.is_deterministic) == (300.0, None, True)
    assert SearchConfig().with_defaults(synthetic=False).time_budget_minutes == 18.0
    assert not SearchConfig().with_defaults(synthetic=False).is_deterministic
    with pytest.raises(ValueError, match="give one of them"):
        SearchConfig(budget="compute:300", time_budget_minutes=5).validate()
    with pytest.raises(ValueError, match="expected compute:N"):
        SearchConfig(budget="minutes:3").validate()
    study = study_config(SearchConfig()).with_defaults(synthetic=False)
    assert study.budget == f"compute:{choices.STUDY_UNITS['real']:g}" and study.time_budget_minutes is None
    assert study_config(SearchConfig(time_budget_minutes=9)).budget is None  # the user's minutes stay


def test_augmentation_computes_in_float32_under_a_bfloat16_policy():
    from automl.data.pipeline import augmenter
    from automl.models import precision

    images = np.random.default_rng(0).uniform(0, 1, (4, 16, 16, 1)).astype("float32")
    outputs = {}
    for policy in ("float32", "mixed_bfloat16"):
        precision.use_policy(policy)
        keras.utils.set_random_seed(3)
        outputs[policy] = keras.ops.convert_to_numpy(augmenter(1.0, seed=3)(images, training=True))
    precision.use_policy("float32")
    assert outputs["mixed_bfloat16"].dtype == np.float32
    np.testing.assert_array_equal(outputs["float32"], outputs["mixed_bfloat16"])


def test_promotion_and_refit_are_priced_in_compute_under_a_compute_budget():
    from automl.refit import plan
    from automl.search import promotion

    rows = [{"image_size": 64, "seconds": 10.0, "compute": 2.0, "history": {"loss": [1, 1]}},
            {"image_size": 128, "seconds": 50.0, "compute": 8.0, "history": {"loss": [1, 1]}}]
    assert promotion.stage_seconds(rows, 64, "compute") == (2.0, 8.0, 1)
    assert promotion.epoch_seconds(rows[1], "compute") == 4.0
    trial = {"trial_id": "1", "seconds": 60.0, "compute": 6.0, "hparams": {},
             "history": {"val_auc": [0.8, 0.9, 0.85]}}
    in_compute = plan.estimate_cost([trial], 3, objective="val_auc", direction="max", pool_size=150,
                                    train_size=100, key="compute")
    in_seconds = plan.estimate_cost([trial], 3, objective="val_auc", direction="max", pool_size=150,
                                    train_size=100)
    assert in_compute == pytest.approx(in_seconds / 10)


def _study(out: Path, seed: int = 0) -> Path:
    command = [sys.executable, "-m", "automl.cli", "study", "--seeds", str(seed), "--smoke",
               "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (run,) = out.glob("binary-study-*/binary-*/")
    return run


def _comparable(run: Path) -> dict:
    """What a rerun must reproduce byte for byte: trials without this machine's timings (and
    without the run's time-stamped id), every score, the test metrics."""
    trials = [{k: v for k, v in t.items() if k not in (*trial_records.TIMING_FIELDS, "run_id")}
              for t in records.read_jsonl(run / "trials.jsonl")]
    with open(run / "scores.csv", newline="") as handle:
        scores = list(csv.reader(handle))
    summary = records.read_json(run / "summary.json")
    return {"trials": json.dumps(trials, sort_keys=True), "scores": scores,
            "test": json.dumps(summary["test"], sort_keys=True), "best": summary["best_trial"]}


@pytest.mark.slow
def test_the_same_smoke_study_twice_gives_identical_records(tmp_path):
    """Two processes, one command: seeds, deterministic ops and the compute budget leave nothing
    to chance or to the machine's speed. Drop a seed (the trial's, the run's, the input order's)
    and the fresh process draws other weights: this fails."""
    first, second = _study(tmp_path / "a"), _study(tmp_path / "b")
    assert records.read_json(first / "config.json")["budget"].startswith("compute:")
    assert all(t["compute"] > 0 for t in records.read_jsonl(first / "trials.jsonl"))
    assert _comparable(first) == _comparable(second)
