"""The campaign script: its steps in order, each once; a rerun skips what is done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "campaign.sh"


def _fake_bin(tmp_path: Path) -> tuple[Path, Path]:
    """``automl``, ``pip``, ``make`` and ``python`` that log their arguments; python runs
    ``-c`` snippets for real (the script reads the default budget from automl.settings.choices)."""
    log, bin_dir = tmp_path / "calls.log", tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("automl", "pip", "make"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
    (bin_dir / "python").write_text(
        f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec {sys.executable} "$@"; fi\n'
        f'echo "python $*" >> {log}\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir, log


def _campaign(tmp_path, bin_dir, out):
    env = dict(os.environ, DATA=str(tmp_path / "data"), OUT=str(out), BIN=str(bin_dir),
               MAKE=str(bin_dir / "make"), DONE=str(tmp_path / "done"))
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def test_the_campaign_runs_each_step_once_and_a_rerun_skips_finished_steps(tmp_path):
    from automl.settings import choices

    bin_dir, log = _fake_bin(tmp_path)
    out = tmp_path / "runs"
    # A finished binary study run without embeddings: the embed step must pick it up.
    run = out / "binary-study-abcd1234" / "binary-20260101-000000-beef"
    run.mkdir(parents=True)
    (run.parent / "study.json").write_text("{}")
    (run / "summary.json").write_text("{}")
    (out / "multiclass-study-abcd1234").mkdir()
    (out / "multiclass-study-abcd1234" / "study.json").write_text("{}")
    first = _campaign(tmp_path, bin_dir, out)
    assert first.returncode == 0, first.stderr
    calls = log.read_text().splitlines()
    budget = choices.BUDGETS["real"]["time_budget_minutes"]
    studies = [c for c in calls if c.startswith("automl study")]
    assert [c.split("--task ")[1].split()[0] for c in studies] == ["binary", "multiclass", "autoencoder"]
    assert all("--seeds 0 1 2" in c for c in studies)
    assert f"automl embed --run {run}/" in calls
    assert any(c.startswith("automl search --task binary --seed 0 --validation plain") for c in calls)
    autokeras = next(c for c in calls if "--which autokeras" in c)
    assert f"--time-budget {budget}" in autokeras
    assert any("--which reference" in c for c in calls)
    assert calls[-2:] == [f"make report OUT={out}", "make perf"]
    # Rerun: every step is done; only the reports are made again.
    log.write_text("")
    second = _campaign(tmp_path, bin_dir, out)
    assert second.returncode == 0, second.stderr
    assert log.read_text().splitlines() == [f"make report OUT={out}", "make perf"]
    assert second.stdout.count("already done") == 8
