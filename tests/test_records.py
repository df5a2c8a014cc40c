"""Record formats: trial lines from one epoch, the environment written with the run folder."""

import json

from automl import records
from automl.search.orchestrator import create_run
from automl.settings.run_config import SearchConfig


def test_trial_metrics_come_from_the_one_best_epoch():
    history = {"val_auc": [0.80, 0.90, 0.85], "val_accuracy": [0.95, 0.70, 0.80],
               "loss": [1.0, 0.5, 0.2]}
    # Each metric's own best would mix epochs (0.95 from epoch 0, 0.2 from epoch 2).
    assert records.best_epoch_metrics(history, "val_auc", "max") == {
        "val_auc": 0.90, "val_accuracy": 0.70, "loss": 0.5}
    assert records.best_epoch_metrics(history, "loss", "min") == {
        "val_auc": 0.85, "val_accuracy": 0.80, "loss": 0.2}
    # A tie keeps the first epoch, the one early stopping restores.
    assert records.best_epoch_metrics({"m": [0.5, 0.7, 0.7], "n": [1, 2, 3]}, "m", "max")["n"] == 2
    assert records.best_epoch_metrics({"m": [0.5, 0.2, 0.2], "n": [1, 2, 3]}, "m", "min")["n"] == 2
    # No objective (a failed or foreign trial): the last epoch.
    assert records.best_epoch_metrics({"loss": [0.3, 0.2]}, "val_auc", "max") == {"loss": 0.2}
    assert records.best_epoch_metrics({}, "val_auc", "max") == {}


def test_trial_record_format():
    line = records.trial_record("r", "binary", "7", hparams={"a": 1}, history={"val_auc": [0.5]},
                                objective="val_auc", direction="max", status="FAILED",
                                error="Traceback\n  File x\nValueError: bad\n", seconds=1.23456)
    assert set(line) == {"run_id", "task", "trial_id", "worker", "status", "error", "hparams", "compute",
                         "metrics", "history", "params", "latency_ms", "seconds", "started_at",
                         "image_size", "stage", "pruned", "portfolio"}
    assert line["error"].endswith("ValueError: bad") and line["seconds"] == 1.235
    json.dumps(line)


def test_environment_is_written_when_the_run_folder_is_made(synthetic_data, tmp_path):
    run_dir, config = create_run(SearchConfig(data=str(synthetic_data), out=str(tmp_path)),
                                 log=lambda *a: None)
    env = json.loads((run_dir / "environment.json").read_text())
    assert {"git_commit", "packages", "device", "python"} <= set(env)
    assert records.run_environment(run_dir) == env
    assert json.loads((run_dir / "config.json").read_text())["image_size"] == config.image_size


def test_unreadable_lines_are_counted_not_fatal(tmp_path):
    path = tmp_path / "trials.jsonl"
    path.write_text('{"trial_id": "0"}\n[1, 2]\n{"trial_id": "1"\n')
    problems = []
    assert [r["trial_id"] for r in records.read_jsonl(path, problems)] == ["0"]
    assert problems == ["trials.jsonl: 2 unreadable line(s) skipped"]


def test_a_record_appended_after_a_torn_line_is_kept(tmp_path):
    """A kill mid-write leaves a torn last line: the next record starts a line of its own
    instead of joining the torn one (which would lose a finished trial for good)."""
    path = tmp_path / "trials.jsonl"
    records.append_jsonl(path, {"trial_id": "0"})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"trial_id": "1", "sta')
    records.append_jsonl(path, {"trial_id": "2", "note": "é"})
    records.append_jsonl(path, {"trial_id": "3"})
    problems = []
    assert [r["trial_id"] for r in records.read_jsonl(path, problems)] == ["0", "2", "3"]
    assert problems == ["trials.jsonl: 1 unreadable line(s) skipped"]
    assert path.read_text(encoding="utf-8").endswith('{"trial_id": "3"}\n')
