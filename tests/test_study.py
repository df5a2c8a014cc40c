"""Studies: one run per seed in one folder; a killed study resumes with no run lost or doubled."""

import json
import signal
import subprocess
import sys
import time

import pytest

from automl.run_config import SearchConfig
from automl.study import study_id


def test_the_same_configuration_names_the_same_study():
    assert study_id(SearchConfig(seed=0)) == study_id(SearchConfig(seed=5, out="elsewhere"))
    assert study_id(SearchConfig()) != study_id(SearchConfig(epochs=3))
    assert study_id(SearchConfig(task="multiclass")).startswith("multiclass-study-")


def test_a_changed_search_code_starts_a_new_study(monkeypatch):
    from automl import study

    before = study_id(SearchConfig())
    assert study.code_digest() == study.code_digest() and len(study.code_digest()) == 12
    monkeypatch.setattr(study, "code_digest", lambda: "another-code")
    assert study_id(SearchConfig()) != before


def test_seeds_must_be_distinct(tmp_path):
    from automl.study import run_study

    with pytest.raises(ValueError, match="--seeds"):
        run_study(SearchConfig(smoke=True, out=str(tmp_path)), [1, 1])
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_study_killed_in_its_second_seed_resumes_to_exactly_two_runs(tmp_path):
    command = [sys.executable, "-m", "automl.cli", "study", "--seeds", "0", "1", "--smoke",
               "--out", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    second = None
    while time.time() < deadline and second is None:
        for state in tmp_path.glob("*/study.json"):
            try:
                second = json.loads(state.read_text())["runs"].get("1")
            except json.JSONDecodeError:
                pass
        time.sleep(0.2)
    assert second, "the second seed never started"
    time.sleep(2.0)  # inside the second seed's search
    process.send_signal(signal.SIGKILL)
    process.wait()
    study = next(tmp_path.glob("*/study.json")).parent
    assert not (study / second / "summary.json").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "seed 0: finished" in resumed.stdout and f"seed 1: resuming {second}" in resumed.stdout
    runs = sorted(p.parent.name for p in study.glob("*/summary.json"))
    assert len(runs) == 2 and second in runs
    assert len([p for p in study.iterdir() if p.is_dir()]) == 2
    assert json.loads((study / "study.json").read_text())["seeds"] == [0, 1]
