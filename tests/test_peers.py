"""Peer baselines (benchmarks/bench_peers.py) write run folders the report reads like a search's."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from automl import records
from automl.records.runs import load_runs
from automl.report import leaderboard, run_section

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_peers.py"
SUMMARY_KEYS = {"task", "peer", "run_id", "config", "env", "objective", "best_trial", "best_hparams",
                "threshold", "trials_completed", "trials_failed", "search_seconds", "data", "val", "test"}
TRIAL_KEYS = {"run_id", "task", "trial_id", "worker", "status", "error", "hparams", "metrics", "history",
              "params", "seconds", "started_at"}


def _bench():
    # benchmarks/ is scripts, not a package: load the file as a module (registered first,
    # because dataclasses look their module up in sys.modules).
    if "bench_peers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_peers", SCRIPT)
        sys.modules["bench_peers"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["bench_peers"])
    return sys.modules["bench_peers"]


def _run(which: str, data: Path, out: Path, *extra: str) -> tuple[int, Path, dict, list[dict]]:
    code = _bench().main(["--data", str(data), "--which", which, "--image-size", "32",
                          "--max-trials", "1", "--epochs", "1", "--out", str(out), *extra])
    (run_dir,) = out.iterdir()
    return code, run_dir, records.read_json(run_dir / "summary.json"), records.read_jsonl(
        run_dir / "trials.jsonl")


@pytest.mark.slow
def test_reference_recipe_writes_a_complete_run(synthetic_data, tmp_path):
    code, run_dir, summary, trials = _run("reference", synthetic_data, tmp_path)
    assert code == 0
    assert run_dir.name.startswith("reference-recipe-binary-")
    assert SUMMARY_KEYS <= summary.keys()
    assert (summary["task"], summary["peer"], summary["config"]["tuner"]) == (
        "binary", "reference-recipe", "none (fixed recipe)")
    assert summary["trials_completed"] == 1 and summary["trials_failed"] == 0
    assert summary["objective"]["name"] == "val_auc" and summary["objective"]["value"] is not None
    assert summary["test"]["accuracy"] is not None and summary["test"]["auc"] is not None
    assert summary["val"]["threshold"] == summary["threshold"]
    assert len(trials) == 1 and TRIAL_KEYS <= trials[0].keys() and trials[0]["status"] == "COMPLETED"
    for name in ("config.json", "command.txt", "scores.csv", "confusion_matrix.png", "roc.png"):
        assert (run_dir / name).is_file(), name
    scores = pd.read_csv(run_dir / "scores.csv")
    assert list(scores.columns) == ["split", "path", "label", "subtype", "patient", "score"]
    assert set(scores.split) == {"val", "test"} and not scores.path.str.startswith("/").any()
    # The leaderboard reads it like any search run, with the peer visible.
    runs, problems = load_runs(tmp_path)
    assert not problems and "(peer: reference-recipe)" in leaderboard.render_leaderboard(runs)
    assert "tuner none (fixed recipe)" in run_section.render_run(runs[0], tmp_path)


def test_a_peer_that_cannot_run_is_a_failed_row(synthetic_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "autokeras", None)  # as if the `peers` extra were not installed
    code, run_dir, summary, trials = _run("autokeras", synthetic_data, tmp_path, "--time-budget", "0.5")
    assert code == 1
    assert summary["trials_failed"] == 1 and summary["val"] is None and summary["test"] is None
    assert trials[0]["status"] == "FAILED" and "autokeras" in trials[0]["error"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["peer"] == "autokeras" and config["time_budget_minutes"] == 0.5


@pytest.mark.slow
def test_autokeras_peer_runs(synthetic_data, tmp_path):
    pytest.importorskip("autokeras")
    code, run_dir, summary, trials = _run("autokeras", synthetic_data, tmp_path)
    assert code == 0, trials
    assert run_dir.name.startswith("autokeras-binary-")
    assert SUMMARY_KEYS <= summary.keys() and summary["config"]["tuner"] == "autokeras-greedy"
    assert summary["trials_completed"] == 1 and summary["test"]["auc"] is not None
    assert TRIAL_KEYS <= trials[0].keys() and trials[0]["history"]["val_auc"]


def test_trials_of_another_librarys_hypermodel_are_recorded_without_a_stage_size():
    """The AutoKeras peer records through RecordingMixin over AutoKeras' own hypermodel,
    which has no search space of ours: recording must not need one."""
    import keras_tuner as kt

    from automl.records.trials import stage_of
    from automl.search.recording import RecordingMixin

    recorder = RecordingMixin()
    recorder.hypermodel = kt.HyperModel()
    assert recorder._full_size() is None
    assert stage_of(64, None) == "full" and stage_of(64, 128) == "screen"
