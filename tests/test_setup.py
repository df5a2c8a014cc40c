"""The install: exactly one TensorFlow distribution per environment, CPU or GPU."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TENSORFLOWS = {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"}


def _resolve(extra: str, tmp_path: Path) -> set[str]:
    """The distributions ``pip install '.[extra]'`` would install into an empty environment
    (pip's dry run: metadata only, nothing downloaded into or installed in this one)."""
    report = tmp_path / f"{extra}.json"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--no-build-isolation", "--report", str(report), f".[{extra}]"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        if any(s in done.stderr for s in ("NewConnectionError", "Could not fetch", "No matching distribution",
                                          "Temporary failure in name resolution")):
            pytest.skip(f"the package index cannot be reached: {done.stderr.strip().splitlines()[-1]}")
        raise AssertionError(done.stderr[-3000:])
    return {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
            for item in json.loads(report.read_text())["install"]}


def test_the_base_install_names_no_tensorflow():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.split(">")[0].split("[")[0].strip() in TENSORFLOWS]
    assert set(project["optional-dependencies"]) >= {"cpu", "gpu"}


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the CUDA build exists for Linux only")
@pytest.mark.parametrize("extra, expected", [
    ("gpu", "tensorflow"), ("cpu", "tensorflow-cpu" if platform.machine() == "x86_64" else "tensorflow")])
def test_a_cpu_or_gpu_environment_ends_with_exactly_one_tensorflow(extra, expected, tmp_path):
    names = _resolve(extra, tmp_path)
    assert names & TENSORFLOWS == {expected}, sorted(names & TENSORFLOWS)
    if extra == "gpu":
        assert any(n.startswith("nvidia-") for n in names)  # the CUDA libraries come with it


def test_make_setup_gpu_removes_the_cpu_build_first():
    plan = subprocess.run(["make", "-n", "setup", "GPU=1"], cwd=ROOT, capture_output=True, text=True).stdout
    uninstall = plan.index("uninstall -y -q tensorflow-cpu")
    assert uninstall < plan.index("install -e '.[dev,gpu]'")
    plan = subprocess.run(["make", "-n", "setup"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "install -e '.[dev,cpu]'" in plan and "tensorflow-cpu" not in plan
