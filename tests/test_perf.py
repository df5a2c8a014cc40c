"""Performance benchmarks: perf.md from small hand-written results, tuner curves, one tiny training row."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    """Import a script from ``benchmarks/`` (a folder of scripts, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ENV = {"git_commit": "abc123", "python": "3.11", "platform": "Linux", "device": "CPU (x86_64, 2 cores)",
       "cpu_count": 2, "packages": {"keras": "3.15.1", "tensorflow-cpu": "2.21.0"}}


def _trial(trial_id: str, started_at: str, seconds: float, auc: float | None, status: str = "COMPLETED"):
    return {"trial_id": trial_id, "status": status, "started_at": started_at, "seconds": seconds,
            "metrics": {} if auc is None else {"val_auc": auc, "auc": 0.5}}


def _write_results(results: Path) -> None:
    (results / "runs" / "ours").mkdir(parents=True)
    (results / "runs" / "ak").mkdir(parents=True)
    files = {
        "bench_data.json": {
            "data": "chest_xray", "split": "train", "images": 4200, "image_size": 128, "batch_size": 32,
            "ours_first_epoch_images_per_sec": 812.34, "ours_cached_epoch_images_per_sec": 15432.1,
            "ours_disk_cache_load_images_per_sec": 25000.0, "keras_first_epoch_images_per_sec": 301.9,
            "keras_later_epoch_images_per_sec": 305.5, "cached_speedup_vs_keras": 50.51, "env": ENV},
        "bench_training.json": {
            "matmul_n": 2048, "matmul_peak_gflops_per_sec": 150.0, "env": ENV,
            "rows": [
                {"family": "plain", "image_size": 64, "batch_size": 32, "stem_stride": 1, "params": 313633,
                 "warmup_steps": 3, "timed_steps": 10, "train_images_per_sec": 321.987,
                 "train_gflops_per_image": 0.374, "achieved_gflops_per_sec": 120.4,
                 "fraction_of_peak": 0.8027},
                {"family": "separable", "image_size": 224, "batch_size": 32, "error": "OOM: too big"},
            ]},
        "bench_tuners.json": {"env": ENV, "tuners": [
            {"tuner": "hyperband", "run_id": "binary-1", "objective": "val_auc", "image_size": 64,
             "epochs": 6, "budget_minutes": 8.0, "trials": 9, "trials_completed": 8, "trials_failed": 1,
             "curve": [[1.0, 0.9], [3.0, 0.95]], "final_best": 0.9612,
             "best_at_budget_fraction": {"0.25": 0.9, "0.5": 0.95, "0.75": 0.95, "1.0": 0.95}},
        ]},
        "runs/ours/summary.json": {"task": "binary", "run_id": "binary-1", "search_seconds": 600.0,
                                   "objective": {"name": "val_auc", "value": 0.97},
                                   "test": {"accuracy": 0.88, "auc": 0.95, "bias": {"sens_spec_gap": 0.21}}},
        "runs/ak/summary.json": {"task": "binary", "run_id": "autokeras-1", "peer": "autokeras",
                                 "search_seconds": 1800.0, "objective": {"name": "val_auc", "value": 0.96},
                                 "test": {"accuracy": 0.85, "auc": 0.93, "bias": {"sens_spec_gap": 0.3}}},
    }
    for name, content in files.items():
        (results / name).write_text(json.dumps(content))


def test_perf_report_from_small_results(tmp_path):
    perf = _load("perf")
    results, out = tmp_path / "results", tmp_path / "reports" / "perf.md"
    results.mkdir()
    _write_results(results)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "perf_notes.md").write_text("Hand-written remark.\n")
    perf.main(["--results", str(results), "--out", str(out)])
    text = out.read_text()
    for heading in perf.HEADINGS.values():
        assert f"## {heading}" in text
    # Numbers rounded only here: pipeline, training, tuners, peers; the memory run is missing.
    assert "15,432" in text and "812" in text and "50.5×" in text
    assert "322.0" in text and "80.3%" in text and "150.0 GFLOP/s" in text and "OOM: too big" in text
    assert "0.9500" in text and "0.9612" in text and "(search_efficiency.png)" in text
    assert "not measured yet: run `make bench-memory`" in text
    assert "autokeras" in text and "cxr-automl, single run, version pre-0.9" in text and "30.0" in text
    assert "## Notes\n\nHand-written remark." in text
    assert "tensorflow-cpu=2.21.0" in text
    assert json.loads((results / "perf.json").read_text())["bench_memory"] is None
    # Deterministic: the same inputs give the same bytes.
    perf.main(["--results", str(results), "--out", str(out)])
    assert out.read_text() == text


def test_perf_report_with_nothing_measured(tmp_path):
    perf = _load("perf")
    out = tmp_path / "perf.md"
    perf.main(["--results", str(tmp_path), "--out", str(out)])
    text = out.read_text()
    assert text.count("not measured yet") == 10


def test_tuner_curve_is_monotone_best_so_far(tmp_path):
    bench_tuners = _load("bench_tuners")
    trials = [
        _trial("00", "2026-01-01T10:00:00Z", 60, 0.80),
        _trial("01", "2026-01-01T10:01:00Z", 120, 0.90),
        _trial("02", "2026-01-01T10:03:00Z", 30, None, status="FAILED"),
        _trial("03", "2026-01-01T10:03:30Z", 90, 0.85),  # worse: the best must not drop
        _trial("04", "2026-01-01T10:05:00Z", 300, 0.95),  # ends after the 8-minute budget
        _trial("05", None, 10, 0.99),  # no start time (resumed run): no point
    ]
    run = tmp_path / "binary-x"
    run.mkdir()
    (run / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    (run / "config.json").write_text(json.dumps({"tuner": "random", "time_budget_minutes": 8.0,
                                                 "image_size": 64, "epochs": 6}))
    entry = bench_tuners.summarize_run(run)
    minutes = [m for m, _ in entry["curve"]]
    values = [v for _, v in entry["curve"]]
    assert minutes == pytest.approx([1.0, 3.0, 5.0, 10.0])
    assert values == [0.80, 0.90, 0.90, 0.95]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert entry["best_at_budget_fraction"] == {"0.25": 0.8, "0.5": 0.9, "0.75": 0.9, "1.0": 0.9}
    assert entry["final_best"] == 0.95 and entry["trials"] == 6 and entry["trials_failed"] == 1
    bench_tuners.plot([entry], tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_training_throughput_one_tiny_config():
    bench_training = _load("bench_training")
    result = bench_training.run([32], ["plain"], steps=2, warmup=1, matmul_n=256)
    (row,) = result["rows"]
    assert "error" not in row, row.get("error")
    assert row["train_images_per_sec"] > 0 and row["achieved_gflops_per_sec"] > 0
    assert 0 < row["fwd_gflops_per_image"] < 1 and row["fraction_of_peak"] > 0
    assert result["matmul_peak_gflops_per_sec"] > 0


def test_threshold_ablation_rescores_test_under_a_clean_validation_threshold(tmp_path):
    ablation = _load("threshold_ablation")
    run = tmp_path / "binary-x"
    run.mkdir()
    # Clean validation separates at 0.2; the run's own (pooled) threshold was 0.6.
    rows = [("val", "NORMAL", 0.1), ("val", "NORMAL", 0.15), ("val", "PNEUMONIA", 0.3),
            ("val", "PNEUMONIA", 0.9), ("test", "NORMAL", 0.4), ("test", "NORMAL", 0.1),
            ("test", "PNEUMONIA", 0.7), ("test", "PNEUMONIA", 0.8)]
    (run / "scores.csv").write_text("split,label,score\n" + "".join(f"{s},{lab},{v}\n" for s, lab, v in rows))
    (run / "summary.json").write_text(json.dumps({
        "task": "binary", "threshold": 0.6, "test": {"accuracy": 1.0},
        "config": {"threshold": "balanced", "validation": "shift"}}))
    result = ablation.ablate(run)
    own, clean = result["rows"]
    assert own["threshold_from"] == "as run (shift validation)" and own["test_accuracy"] == 1.0
    assert 0.15 < clean["threshold"] < 0.3 and clean["test_accuracy"] == 0.75
    assert clean["test_specificity"] == 0.5 and clean["test_sens_spec_gap"] == 0.5
    (run / "summary.json").write_text(json.dumps({"task": "multiclass", "test": {}}))
    with pytest.raises(ValueError, match="needs a binary run"):
        ablation.ablate(run)


def test_operating_points_are_chosen_on_the_selection_rows_and_read_on_test(tmp_path):
    points = _load("operating_points")
    run = tmp_path / "binary-refit"
    run.mkdir()
    # A refit run: its selection rows are the out-of-fold ones ("oof"), never "val".
    rows = [("oof", "PNEUMONIA", v) for v in (0.2, 0.6, 0.7, 0.8, 0.9)] + \
        [("oof", "NORMAL", v) for v in (0.1, 0.3, 0.4, 0.5, 0.65)] + \
        [("val", "NORMAL", 0.99)] * 3 + \
        [("test", "PNEUMONIA", 0.52), ("test", "PNEUMONIA", 0.95), ("test", "NORMAL", 0.58),
         ("test", "NORMAL", 0.05)]
    (run / "scores.csv").write_text("split,label,score\n" + "".join(f"{s},{lab},{v}\n" for s, lab, v in rows))
    (run / "summary.json").write_text(json.dumps({
        "task": "binary", "threshold": 0.6, "test": {"accuracy": 1.0}, "config": {"threshold": "balanced"},
        "val_source": "out-of-fold"}))
    by_rule = {r["rule"]: r for r in points.operating_points(run, rules=("sens:0.8", "spec:0.8"))}
    sens, spec = by_rule["sens:0.8"], by_rule["spec:0.8"]
    # sens:0.8 keeps 4 of 5 out-of-fold positives: the highest such threshold is between 0.5 and 0.6.
    assert 0.5 < sens["threshold"] <= 0.6 and sens["val_sensitivity"] == 0.8
    assert sens["test_sensitivity"] == 0.5 and sens["test_specificity"] == 0.5
    # spec:0.8 keeps 4 of 5 out-of-fold negatives below: between 0.5 and 0.6 as well.
    assert spec["val_specificity"] == 0.8 and spec["test_accuracy"] == 0.5
    # The threshold ablation reads the same rows, and says which they are.
    clean = _load("threshold_ablation").ablate(run)["rows"][1]
    assert clean["threshold_from"] == "clean out-of-fold scores" and 0.5 < clean["threshold"] < 0.65


def test_trial_minutes_are_summed_by_outcome_and_dead_trials_found(tmp_path):
    trial_minutes, perf = _load("trial_minutes"), _load("perf")
    run = tmp_path / "binary-study-x" / "binary-run"
    run.mkdir(parents=True)
    trials = [
        {"status": "COMPLETED", "seconds": 120, "stage": "full", "history": {"val_auc": [0.8, 0.9]}},
        {"status": "COMPLETED", "seconds": 60, "stage": "full", "history": {"val_auc": [0.5, 0.5, 0.5]}},
        {"status": "PRUNED", "seconds": 30, "stage": "screen", "pruned": {"rule": "median", "epoch": 2},
         "history": {"val_auc": [0.6, 0.7]}},
        {"status": "PRUNED", "seconds": 24, "stage": "full", "pruned": {"rule": "chance", "epoch": 2},
         "history": {"val_auc": [0.5, 0.5]}},
        {"status": "PRUNED", "seconds": 6, "pruned": {"epoch": 2}, "history": {"val_auc": [0.5, 0.51]}},
        {"status": "FAILED", "seconds": 0.5, "history": {}},
    ]
    (run / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    (run / "summary.json").write_text(json.dumps({"search_seconds": 600, "config": {"seed": 1}}))
    row = trial_minutes.run_minutes(run)
    assert (row["study"], row["seed"], row["search_minutes"], row["trials"]) == ("binary-study-x", 1, 10, 6)
    assert row["completed"] == {"trials": 2, "minutes": 3.0}
    assert row["pruned (median)"] == {"trials": 2, "minutes": 0.6}  # records before the rule was named
    assert row["pruned (chance)"] == {"trials": 1, "minutes": 0.4}
    assert row["failed"]["trials"] == 1
    assert row["dead"] == {"trials": 2, "minutes": 1.4, "full_size": 2}
    text = perf.section_trial_minutes({"rows": [row]})
    assert "`binary-study-x`" in text and "1 (0.4 min)" in text and "2 (1.4 min), 2 at full size" in text


def test_the_portfolio_is_chosen_on_validation_among_configurations_that_fit_a_member_share(tmp_path):
    from automl import records

    portfolio = _load("portfolio")
    limit = portfolio.member_minutes()
    assert limit == pytest.approx(1.5 * 0.6 * 18 / 3)  # the first promotion's allowance by default

    def trial(config, best, minutes, *, size=128, status="COMPLETED"):
        # 4 epochs trained of the default 12: the minutes are scaled to 12.
        return {"trial_id": f"{config}{best}", "status": status, "image_size": size,
                "seconds": minutes * 60 / 3,
                "hparams": {"family": config, "image_size": size, "tuner/epochs": 12},
                "history": {"loss": [1.0] * 4, "val_shift_auc": [0.5, best, best - 0.01, 0.6]}}

    def run(name, trials, *, objective="val_shift_auc", task="binary"):
        folder = tmp_path / name
        folder.mkdir()
        records.write_json(folder / "summary.json", {"task": task, "objective": {"name": objective},
                                                     "test": {"accuracy": 1.0}})
        for t in trials:
            records.append_jsonl(folder / "trials.jsonl", t)
        return folder

    runs = [run("a", [trial("cheap", 0.95, 3.0), trial("dear", 0.99, 9.0), trial("mixed", 0.97, 4.0),
                      trial("screened", 0.999, 1.0, size=64), trial("pruned", 0.999, 1.0, status="PRUNED")]),
            run("b", [trial("mixed", 0.91, 4.0), trial("cheap", 0.97, 3.0)]),
            run("c", [trial("old", 0.999, 1.0)], objective="val_auc"),
            run("d", [trial("other", 0.999, 1.0)], task="multiclass")]
    found = portfolio.full_size_trials(runs, "binary", 128, "val_shift_auc")
    assert sorted(t["values"]["family"] for t in found) == ["cheap", "cheap", "dear", "mixed", "mixed"]
    assert all(t["minutes"] in (3.0, 4.0, 9.0) for t in found)
    chosen = portfolio.choose(found, top=2, max_minutes=limit, direction="max")
    # Mean of each trial's best epoch: cheap 0.96, mixed 0.94; dear is too slow for a member.
    assert [c["values"]["family"] for c in chosen] == ["cheap", "mixed"]
    assert chosen[0]["validation_mean"] == pytest.approx(0.96) and chosen[0]["runs"] == ["a", "b"]
    assert "image_size" not in chosen[0]["values"] and "tuner/epochs" not in chosen[0]["values"]
