"""Studies: one run per seed in one folder; a killed study resumes with no run lost or doubled."""

import json
import signal
import subprocess
import sys
import time

import pytest

from automl.search.study import study_id
from automl.settings.run_config import SearchConfig


def test_the_same_configuration_names_the_same_study():
    assert study_id(SearchConfig(seed=0)) == study_id(SearchConfig(seed=5, out="elsewhere"))
    assert study_id(SearchConfig()) != study_id(SearchConfig(epochs=3))
    assert study_id(SearchConfig(task="multiclass")).startswith("multiclass-study-")


def test_a_changed_search_code_starts_a_new_study(monkeypatch):
    from automl.search import study

    before = study_id(SearchConfig())
    assert study.code_digest() == study.code_digest() and len(study.code_digest()) == 12
    monkeypatch.setattr(study, "code_digest", lambda: "another-code")
    assert study_id(SearchConfig()) != before


def test_report_only_modules_are_never_imported_by_a_run():
    """They are left out of the study's code digest: a report fix must not split a study."""
    from automl.search.study import REPORT_ONLY_MODULES

    modules = ["automl." + name.removesuffix(".py").replace("/", ".") for name in REPORT_ONLY_MODULES]
    probe = ("import sys; import automl.cli, automl.search.orchestrator, automl.search.study, "
             "automl.serve.embeddings, automl.serve.predict; "
             f"print([m for m in {modules!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_finished_seed_left_out_of_study_json_is_adopted_and_recorded(tmp_path):
    """A kill between making a seed's folder and recording it: the rerun adopts the folder
    and writes it into study.json, so the study counts that seed from then on."""
    from automl.search.study import STUDY_FILE, run_study

    config = SearchConfig(smoke=True, out=str(tmp_path))
    study_dir = tmp_path / study_id(config)
    (study_dir / "binary-orphan").mkdir(parents=True)
    (study_dir / "binary-orphan" / "config.json").write_text(json.dumps({"seed": 0}))
    (study_dir / "binary-orphan" / "summary.json").write_text("{}")
    (study_dir / STUDY_FILE).write_text(json.dumps({"study_id": study_dir.name, "task": "binary",
                                                    "seeds": [0], "runs": {}}))
    lines = []
    run_study(config, [0], log=lines.append)
    assert "seed 0: finished in binary-orphan; skipped" in lines
    assert json.loads((study_dir / STUDY_FILE).read_text())["runs"] == {"0": "binary-orphan"}


def test_seeds_must_be_distinct(tmp_path):
    from automl.search.study import run_study

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
