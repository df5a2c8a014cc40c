"""Run records and their formats: a JSON line per trial, the summary, per-image scores, the environment."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import secrets
import subprocess
import time
from importlib import metadata
from pathlib import Path

from automl.records.trials import COMPLETED

PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "keras-tuner", "scikit-learn", "numpy", "pandas")


def new_run_id(task: str) -> str:
    """``<task>-<UTC timestamp>-<random>``: sortable, and never the name of an old run."""
    return f"{task}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (temp file + rename): a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_plain) + "\n")
    os.replace(tmp, path)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def append_jsonl(path: Path, obj) -> None:
    """Append one record as a single line under an exclusive lock.

    Several workers may append to the same file; the lock plus a single
    ``write`` keeps lines whole and never interleaved. A torn last line (a kill
    mid-write) is ended first, so that this record does not join it and get lost too.
    """
    line = (json.dumps(obj, default=_plain) + "\n").encode("utf-8")
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if handle.seek(0, os.SEEK_END) > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = b"\n" + line
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_jsonl(path: Path, problems: list[str] | None = None) -> list[dict]:
    """All whole records (JSON objects) of a JSON-lines file; a torn last line (a crash
    mid-write) or any other unreadable line is skipped and, if ``problems`` is given,
    counted into it as one message."""
    path = Path(path)
    if not path.exists():
        return []
    records, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        records += [record] if isinstance(record, dict) else []
        bad += not isinstance(record, dict) and bool(line.strip())
    if bad and problems is not None:
        problems.append(f"{path.name}: {bad} unreadable line(s) skipped")
    return records


ENVIRONMENT_FILE = "environment.json"


def write_environment(run_dir: Path) -> dict:
    """Record :func:`environment` in the run folder the moment it is created, so an
    interrupted run keeps what made it; returns it."""
    env = environment()
    write_json(Path(run_dir) / ENVIRONMENT_FILE, env)
    return env


def run_environment(run_dir: Path) -> dict:
    """The environment recorded when the run folder was made (now, for older runs)."""
    path = Path(run_dir) / ENVIRONMENT_FILE
    return read_json(path) if path.exists() else environment()


def best_epoch_metrics(history: dict[str, list[float]], objective: str, direction: str) -> dict:
    """Every metric at the one epoch that is best by ``objective`` (``direction`` max or
    min; the first such epoch on ties): the epoch early stopping restores. Without the
    objective in ``history`` (a failed or foreign trial), the last epoch's values."""
    epoch = best_epoch(history.get(objective) or [], direction)
    if epoch is None:
        epoch = max((len(v) for v in history.values()), default=0) - 1
    return {name: float(vals[epoch]) for name, vals in history.items() if 0 <= epoch < len(vals)}


def best_epoch(values: list[float], direction: str) -> int | None:
    """Index of the first best finite value (``direction`` max or min); None if none is finite."""
    finite = [(v, i) for i, v in enumerate(values) if v == v]
    if not finite:
        return None
    if direction == "max":
        return max(finite, key=lambda p: (p[0], -p[1]))[1]
    return min(finite, key=lambda p: (p[0], p[1]))[1]


def short_error(message: str | None) -> str | None:
    """The last lines of a traceback (the exception), at most 1,500 characters."""
    if not message:
        return None
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return "\n".join(lines[-3:])[-1500:]


def trial_record(run_id: str, task: str, trial_id: str, *, hparams: dict, history: dict,
                 objective: str, direction: str, status: str = COMPLETED, error: str | None = None,
                 params: int | None = None, seconds: float = 0.0, started_at: str | None = None,
                 worker: str | None = None, latency_ms: float | None = None, image_size: int | None = None,
                 pruned: dict | None = None, stage: str | None = None,
                 portfolio: int | None = None, compute: float | None = None) -> dict:
    """One ``trials.jsonl`` line: metrics from the best epoch by the objective, the full history,
    parameter count, CPU inference latency (ms per image at batch 1), the image size it
    trained at and its ``stage`` (``screen`` below the run's size, ``full`` at it) and, for a
    PRUNED trial, where and why it was stopped; ``portfolio``: which warm-start configuration
    (:mod:`automl.search.portfolio`) it is, if one; ``compute``: the compute units its epochs
    were charged (:mod:`automl.models.cost`), the same on every machine, beside its ``seconds``."""
    return {"run_id": run_id, "task": task, "trial_id": trial_id, "worker": worker,
            "status": status, "error": short_error(error), "hparams": hparams,
            "metrics": best_epoch_metrics(history, objective, direction), "history": history,
            "params": params, "latency_ms": latency_ms, "seconds": round(seconds, 3),
            "compute": compute, "started_at": started_at, "image_size": image_size, "stage": stage,
            "pruned": pruned,
            "portfolio": portfolio}


def new_summary(run_id: str, task: str, config: dict, *, env: dict, objective: str, direction: str,
                data_root: Path, counts: dict[str, int], problems: list) -> dict:
    """``summary.json`` before selection: every key present, the results still None."""
    return {
        "task": task, "run_id": run_id, "config": config, "env": env,
        "objective": {"name": objective, "direction": direction, "value": None},
        "best_trial": None, "threshold": None, "prior_weights": None,
        "trials_completed": 0, "trials_failed": 0, "trials_pruned": 0, "trials_screened": 0,
        "search_seconds": 0.0,
        "data": {"root": str(data_root), "counts": {k: int(v) for k, v in counts.items()},
                 "problems": problems},
        "val": None, "test": None,
    }


# The ``split`` of ``scores.csv`` rows scored out of fold by a refit's fold models: every
# train + validation image, each by the fold model that did not train on it (their
# metrics are the summary's ``val``).
SCORES_OUT_OF_FOLD = "oof"


#: Where a run's per-image scores are: ``scores.csv`` as written, or gzipped (how the committed
#: records of older runs keep them, to keep the repository small).
SCORES_FILES = ("scores.csv", "scores.csv.gz")


def scores_file(run_dir: Path) -> Path | None:
    """The run's scores file (:data:`SCORES_FILES`), None when it has none."""
    return next((p for name in SCORES_FILES if (p := Path(run_dir) / name).is_file()), None)


def read_score_rows(run_dir: Path):
    """Every row of a run's ``scores.csv`` (:func:`score_rows`; or ``scores.csv.gz``), as one
    data frame."""
    import pandas as pd

    path = scores_file(run_dir)
    if path is None:
        raise FileNotFoundError(f"{Path(run_dir) / 'scores.csv'}: no such file")
    return pd.read_csv(path)


def read_scores(run_dir: Path) -> dict:
    """A run's ``scores.csv`` as ``{"selection": ..., "test": ...}`` data frames: the clean rows
    its choices were made on (``val``, or after a refit the ``oof`` rows) and the test rows."""
    scores = read_score_rows(run_dir)
    selection = SCORES_OUT_OF_FOLD if (scores.split == SCORES_OUT_OF_FOLD).any() else "val"
    return {"selection": scores[scores.split == selection].reset_index(drop=True),
            "test": scores[scores.split == "test"].reset_index(drop=True)}


def binary_scores(run_dir: Path) -> tuple[dict, dict, dict]:
    """A finished binary run's summary, its ``scores.csv`` rows as ``{"val": selection rows,
    "test": test rows}`` (:func:`read_scores`) and their labels (1 = positive, PNEUMONIA on
    Kermany's data): what the after-the-fact threshold studies in ``benchmarks/`` read.

    Raises:
        ValueError: another task, or a run without a test split.
    """
    from automl.settings.labels import is_positive, negative_label

    summary = read_json(Path(run_dir) / "summary.json")
    if summary.get("task") != "binary" or not summary.get("test"):
        raise ValueError(f"{run_dir}: needs a binary run with a test split")
    scores = read_scores(run_dir)
    split = {"val": scores["selection"], "test": scores["test"]}
    negative = negative_label(summary)
    return summary, split, {name: is_positive(frame.label, negative=negative)
                            for name, frame in split.items()}


def positive_scores(rows):
    """The positive-class score of ``scores.csv`` rows, higher = more likely pneumonia: the
    ``score`` column (P(pneumonia), or an anomaly score), or 1 − P(normal) (``score_0``) of a
    multiclass run's probabilities; a pandas series."""
    return rows["score"] if "score" in rows else 1 - rows["score_0"]


def score_rows(table, split: str, scores, root: Path):
    """``scores.csv`` rows of one split: path (relative to the data folder, so records hold
    no machine paths), label, subtype, patient, and ``score`` or ``score_<k>`` per class."""
    import numpy as np

    frame = table[["path", "label", "subtype", "patient"]].copy()
    frame["path"] = [os.path.relpath(p, root) for p in frame.path]
    frame.insert(0, "split", split)
    scores = np.asarray(scores)
    if scores.ndim == 1:
        frame["score"] = scores
    else:
        for k in range(scores.shape[1]):
            frame[f"score_{k}"] = scores[:, k]
    return frame


def environment() -> dict:
    """The toolkit's version, git commit, package versions and device, so a result never
    loses what made it."""
    from automl import __version__

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "device": device(),
        "cpu_count": os.cpu_count(),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"{len(gpus)} GPU: " + ", ".join(g.name for g in gpus)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _plain(value):
    """JSON fallback for numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
