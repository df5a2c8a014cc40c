"""Keras Tuner's distributed mode on one machine: a chief oracle and N workers over loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from automl.models.devices import VISIBLE, host_gpus, worker_devices

MAX_RESTARTS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def role_command(run_dir: Path, role: str) -> list[str]:
    return [sys.executable, "-m", "automl.cli", "search", "--resume", str(run_dir), "--role", role]


def role_env(tuner_id: str, ip: str, port: int, *, devices: str | None = None) -> dict:
    """The three variables Keras Tuner reads to join a distributed search, and the GPU the
    process may use (``devices``: a ``CUDA_VISIBLE_DEVICES`` value; None leaves it)."""
    env = dict(os.environ)
    env.update(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP=ip,
               KERASTUNER_ORACLE_PORT=str(port))
    if devices is not None:
        env[VISIBLE] = devices
    # Workers share the cores; one thread pool each avoids oversubscription.
    env.setdefault("TF_NUM_INTEROP_THREADS", "1")
    return env


def launch(run_dir: Path, workers: int, *, log=print, ip: str = "127.0.0.1",
           gpus: list[str] | None = None) -> int:
    """Run a chief and ``workers`` workers on this machine until the chief ends.

    A worker that dies (crash, OOM, ``kill -9``) is restarted under the same
    tuner id: the chief still holds its unfinished trial for that id and hands
    the same trial to the replacement, so the trial is retried, not lost, and
    recorded once. The chief stops by itself when the trial budget is spent.

    Returns:
        The chief's exit code.
    """
    port = free_port()
    gpus = host_gpus() if gpus is None else gpus
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)

    def start(tuner_id: str, role: str) -> subprocess.Popen:
        out = open(logs / f"{tuner_id}.log", "ab")
        # Worker i gets GPU i mod G; the chief (trials out, the final scoring) sees them all,
        # and memory growth (automl.models.devices) keeps it from taking their memory.
        devices = None if role == "chief" else worker_devices(int(tuner_id.removeprefix("worker")),
                                                                  gpus)
        return subprocess.Popen(role_command(run_dir, role), env=role_env(tuner_id, ip, port,
                                                                          devices=devices),
                                stdout=out, stderr=subprocess.STDOUT)

    chief = start("chief", "chief")
    log(f"chief on {ip}:{port}; {workers} worker(s); logs in {logs}")
    time.sleep(2)  # let the chief open its port before the workers dial in
    team = {f"worker{i}": start(f"worker{i}", "worker") for i in range(workers)}
    restarts = dict.fromkeys(team, 0)

    def forward(signum, frame):
        for process in [chief, *team.values()]:
            if process.poll() is None:
                process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while chief.poll() is None:
            for tuner_id, process in team.items():
                code = process.poll()
                if code not in (None, 0) and restarts[tuner_id] < MAX_RESTARTS:
                    restarts[tuner_id] += 1
                    log(f"{tuner_id} exited with {code}; restarting it to retry its trial "
                        f"({restarts[tuner_id]}/{MAX_RESTARTS})")
                    team[tuner_id] = start(tuner_id, "worker")
            time.sleep(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in team.values():
            if process.poll() is None:
                process.terminate()
    return chief.returncode
