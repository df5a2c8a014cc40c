import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl import records

pytestmark = pytest.mark.slow


def _command(data, out, trials):
    return [sys.executable, "-m", "automl.cli", "search", "--data", str(data), "--tuner", "random",
            "--max-trials", str(trials), "--epochs", "2", "--image-size", "32", "--fix", "blocks=2",
            "--out", str(out), "--workers", "2"]


def _worker_pid(run_dir: Path, tuner_id: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(run_dir).encode() in cmdline and f"KERASTUNER_TUNER_ID={tuner_id}".encode() in environ:
            return int(entry.name)
    return None


def _check_run(run_dir: Path, trials: int):
    lines = records.read_jsonl(run_dir / "trials.jsonl")
    assert sorted(int(t["trial_id"]) for t in lines) == list(range(trials))
    assert all(t["status"] == "COMPLETED" for t in lines)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials_completed"] == trials and summary["test"] is not None
    return lines


def test_chief_and_two_workers_one_killed_mid_trial(synthetic_data, tmp_path):
    """A chief and two workers share the trials; worker0, killed mid-search, is restarted
    and every trial ends up completed and recorded once."""
    launcher = subprocess.Popen(_command(synthetic_data, tmp_path, 4), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline and not killed:
        runs = list(tmp_path.glob("binary-*"))
        if runs and records.read_jsonl(runs[0] / "trials.jsonl"):
            time.sleep(1.0)
            pid = _worker_pid(runs[0].resolve(), "worker0") or _worker_pid(runs[0], "worker0")
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed = True
        time.sleep(0.2)
    assert killed, "never found worker0 mid-search"
    output, _ = launcher.communicate(timeout=400)
    assert launcher.returncode == 0, output[-3000:]
    assert "restarting" in output
    lines = _check_run(runs[0], 4)
    # worker0 was found running a trial when it was killed; worker1 recorded trials too.
    workers = {t["worker"] for t in lines}
    assert "worker1" in workers and workers <= {"worker0", "worker1"}


def test_workers_are_pinned_to_one_gpu_each(monkeypatch):
    from automl.models import devices
    from automl.search import distributed

    fake = ["0", "1", "2"]
    assert [devices.worker_devices(i, fake) for i in range(5)] == ["0", "1", "2", "0", "1"]
    assert devices.worker_devices(3, []) is None  # a CPU host: the environment is left alone
    env = distributed.role_env("worker4", "127.0.0.1", 1234, devices=devices.worker_devices(4, fake))
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["KERASTUNER_TUNER_ID"] == "worker4"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert devices.host_gpus() == ["2", "3"]  # a parent's restriction is kept
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert devices.host_gpus() == []


def test_memory_growth_is_harmless_without_a_gpu():
    from automl.models import devices

    assert devices.allow_memory_growth() >= 0
