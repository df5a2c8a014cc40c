"""TensorBoard, tested for real: the HParams plugin serves every trial's hyperparameters and objective."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from automl import records


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(port: int, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/{path}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_hparams_plugin_serves_every_trial(binary_run):
    run_dir = binary_run
    trials = records.read_jsonl(run_dir / "trials.jsonl")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(run_dir / "tb"),
                               "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        groups, deadline = [], time.time() + 90
        while time.time() < deadline and len(groups) < len(trials):
            try:
                experiment = _post(port, "experiment", {"experimentName": ""})
                groups = _post(port, "session_groups", {
                    "experimentName": "", "startIndex": 0, "sliceSize": 100, "colParams": [],
                    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                        "STATUS_RUNNING"]}).get("sessionGroups", [])
            except OSError:
                pass  # not up yet
            time.sleep(1)
        assert len(groups) == len(trials), f"{len(groups)} session groups for {len(trials)} trials"
        names = {h["name"] for h in experiment["hparamInfos"]}
        assert {"family", "learning_rate", "blocks"} <= names
        served = sorted(json.dumps({k: g["hparams"][k] for k in ("family", "learning_rate")}, sort_keys=True)
                        for g in groups)
        recorded = sorted(json.dumps({k: t["hparams"][k] for k in ("family", "learning_rate")},
                                     sort_keys=True) for t in trials)
        assert served == recorded
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert any("val_shift_auc" in tag or "auc" in tag for tag in metrics), metrics
    finally:
        server.terminate()
        server.wait(timeout=30)
