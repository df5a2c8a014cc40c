"""Compare your method: `automl evaluate` scores another system's predictions as our runs are scored."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from automl import records
from automl.cli import main
from automl.records.runs import load_runs
from automl.report import leaderboard

COMMITTED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "runs"


def predictions(run_dir: Path, folder: Path, *, decision: float | None = None) -> tuple[Path, Path]:
    """A run's own ``scores.csv`` as a predictions file of its test split and one of its
    validation split (with a ``decision`` column at threshold ``decision``, if given)."""
    scores = records.read_scores(run_dir)
    files = []
    for name, rows in (("test", scores["test"]), ("val", scores["selection"])):
        frame = rows[["path", "score"]].copy()
        if decision is not None:
            frame["decision"] = (frame.score >= decision).astype(int)
        frame.to_csv(folder / f"{name}.csv", index=False)
        files.append(folder / f"{name}.csv")
    return files[0], files[1]


def evaluate(data: Path, test: Path, out: Path, *extra: str, name: str = "own", seed: int = 0) -> dict:
    assert main(["evaluate", "--task", "binary", "--data", str(data), "--predictions", str(test),
                 "--name", name, "--seed", str(seed), "--out", str(out), *extra]) == 0
    (run_dir,) = [p for p in out.iterdir() if p.name.startswith(f"{name}-binary-")]
    return records.read_json(run_dir / "summary.json")


def test_a_runs_own_scores_reproduce_every_test_metric_and_interval(binary_run, synthetic_data, tmp_path):
    summary = records.read_json(binary_run / "summary.json")
    test, val = predictions(binary_run, tmp_path)
    # The run's own threshold (chosen on its pooled shift-validation set) given as the number it is.
    scored = evaluate(synthetic_data, test, tmp_path / "runs", "--val-predictions", str(val),
                      "--threshold", repr(summary["threshold"]))
    assert scored["test"] == summary["test"]
    assert scored["decision_rule"] == "threshold given" and scored["external"] == "own"
    runs, problems = load_runs(tmp_path / "runs")
    assert not problems and "(external: own)" in leaderboard.render_leaderboard(runs)


def test_a_decision_column_is_used_as_it_is(binary_run, synthetic_data, tmp_path):
    summary = records.read_json(binary_run / "summary.json")
    test, _ = predictions(binary_run, tmp_path, decision=summary["threshold"])
    scored = evaluate(synthetic_data, test, tmp_path / "runs")
    assert scored["decision_rule"] == "decision column" and scored["test"]["threshold"] is None
    assert {k: v for k, v in scored["test"].items() if k != "threshold"} == \
        {k: v for k, v in summary["test"].items() if k != "threshold"}


def test_without_a_rule_the_threshold_is_chosen_on_validation_or_is_0_5(binary_run, synthetic_data, tmp_path):
    test, val = predictions(binary_run, tmp_path)
    plain = evaluate(synthetic_data, test, tmp_path / "a", name="plain")
    assert plain["decision_rule"] == "0.5 (no validation predictions)" and plain["test"]["threshold"] == 0.5
    chosen = evaluate(synthetic_data, test, tmp_path / "b", "--val-predictions", str(val), name="chosen")
    assert chosen["decision_rule"] == "chosen on validation predictions"
    assert chosen["threshold"] == chosen["val"]["threshold"] == chosen["test"]["threshold"]


@pytest.mark.parametrize("case", ["missing", "extra", "malformed", "outside"])
def test_a_bad_predictions_row_is_an_error_naming_it(case, binary_run, synthetic_data, tmp_path, capsys):
    test, _ = predictions(binary_run, tmp_path)
    frame = pd.read_csv(test)
    scores = records.read_score_rows(binary_run)
    if case == "missing":
        gone, frame = frame.path[0], frame.iloc[1:]
        expected = f"test.csv: no prediction for 1 image(s) of the test split: {gone}"
    elif case == "extra":
        train_image = scores[scores.split == "val"].path.iloc[0]
        frame = pd.concat([frame, pd.DataFrame({"path": [train_image], "score": [0.5]})])
        expected = (f"test.csv row {len(frame)} ({train_image}): not an image of the test split "
                    "(it is a val image)")
    else:
        frame = frame.astype({"score": object})
        frame.loc[3, "score"] = "high" if case == "malformed" else "1.7"
        expected = "test.csv row 4: " + ("a score is not a number (high)" if case == "malformed"
                                         else "a probability outside [0, 1] (1.7)")
    frame.to_csv(test, index=False)
    code = main(["evaluate", "--task", "binary", "--data", str(synthetic_data), "--predictions", str(test),
                 "--name", "bad", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert not (tmp_path / "runs").exists()


def _real(run_id: str, tmp_path: Path, real_data: Path, *, given_threshold: bool) -> tuple[dict, dict]:
    run_dir = COMMITTED / run_id
    summary = records.read_json(run_dir / "summary.json")
    test, val = predictions(run_dir, tmp_path)
    rule = ["--threshold", repr(summary["threshold"])] if given_threshold else ["--val-predictions", str(val)]
    scored = evaluate(real_data, test, tmp_path / "runs", *rule, seed=summary["config"]["seed"])
    return summary, scored


@pytest.mark.realdata
def test_a_committed_real_data_run_re_scores_to_its_summary(real_data, tmp_path):
    summary, scored = _real("binary-20261126-211631-2197", tmp_path, real_data, given_threshold=True)
    assert {k: scored["test"][k] for k in summary["test"]} == summary["test"]


@pytest.mark.realdata
@pytest.mark.parametrize("run_id", ["autokeras-binary-20261126-235322-f7f0",
                                    "reference-recipe-binary-20261127-001711-561e"])
def test_the_committed_peers_re_score_through_evaluate_to_their_rows(run_id, real_data, tmp_path):
    """The peers choose their threshold on their validation predictions, as evaluate does."""
    summary, scored = _real(run_id, tmp_path, real_data, given_threshold=False)
    assert scored["threshold"] == summary["threshold"]
    assert {k: scored["test"][k] for k in summary["test"]} == summary["test"]
    assert os.path.basename(scored["config"]["predictions"]) == "test.csv"
