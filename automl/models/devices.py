"""GPUs: memory growth in every process, one GPU per distributed worker."""

from __future__ import annotations

import os
import subprocess

VISIBLE = "CUDA_VISIBLE_DEVICES"


def allow_memory_growth() -> int:
    """Let TensorFlow take GPU memory as it needs it instead of all of it at start, so several
    processes (a chief and its workers, an embed beside a search) can share one GPU. Must run
    before the first TensorFlow op of the process; returns the number of GPUs seen."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: too late for this process, not fatal
            pass
    return len(gpus)


def host_gpus() -> list[str]:
    """The GPU indices this host offers its workers: the parent's ``CUDA_VISIBLE_DEVICES``
    if set, else what ``nvidia-smi -L`` lists (none without a driver). Never starts CUDA."""
    if os.environ.get(VISIBLE) is not None:
        return [g for g in os.environ[VISIBLE].split(",") if g.strip() and g.strip() != "-1"]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU ")]


def worker_devices(worker: int, gpus: list[str]) -> str | None:
    """``CUDA_VISIBLE_DEVICES`` for worker ``worker``: GPU ``worker mod G`` of the host's G
    GPUs, or None (leave the environment as it is) on a host without GPUs."""
    return gpus[worker % len(gpus)] if gpus else None
