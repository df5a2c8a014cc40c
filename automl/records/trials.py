"""A trial record's vocabulary: its status names, its configuration's identity, its image size."""

from __future__ import annotations

import hashlib
import json

# The ``status`` of a line of ``trials.jsonl``. Keras Tuner marks a pruned trial COMPLETED;
# the record tells the two apart.
COMPLETED = "COMPLETED"
FAILED = "FAILED"
PRUNED = "PRUNED"
# Keras Tuner's status of a trial still training (never written to a record).
RUNNING = "RUNNING"

# A trial's ``stage``: trained below the run's image size (multi-fidelity), or at it.
SCREEN = "screen"
FULL = "full"


def config_key(values: dict) -> str:
    """A configuration's identity: its hyperparameters without Keras Tuner's bookkeeping
    (``tuner/*``) and without the image size it was trained at."""
    return json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/") and k != "image_size"},
                      sort_keys=True, default=str)


# Fields of a trial record that measure this machine's time: they differ between reruns of a
# deterministic search, every other field does not.
TIMING_FIELDS = ("seconds", "started_at", "latency_ms")


def trial_seed(run_seed: int, trial_id: str) -> int:
    """The seed of trial ``trial_id`` of a run seeded ``run_seed``: its weights, its input order
    and its augmentation, the same whatever trials ran before it."""
    digest = hashlib.sha256(f"{run_seed}:{trial_id}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31 - 1)


def trial_image_size(record: dict, default: int | None = None) -> int | None:
    """The image size a recorded trial (or ``{"hparams": values}``) trained at: the record's
    ``image_size``, else its ``image_size`` hyperparameter, else ``default`` (records made
    before image-size screening existed; None: unknown)."""
    size = record.get("image_size") or (record.get("hparams") or {}).get("image_size") or default
    return int(size) if size else None


def stage_of(image_size: int | None, full_size: int | None) -> str:
    """:data:`SCREEN` for a trial below the run's image size (multi-fidelity), else :data:`FULL`."""
    return SCREEN if image_size and full_size and image_size < full_size else FULL
