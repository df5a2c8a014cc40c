"""Repeated-seed studies: the same search once per seed, in one study folder that a rerun resumes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

from automl import __version__, records
from automl.settings import choices
from automl.settings.run_config import SearchConfig

STUDY_FILE = "study.json"


def shared_config(config: SearchConfig) -> dict:
    """What every run of a study shares: the configuration as given, less seed and folder."""
    shared = dataclasses.asdict(config)
    for key in ("seed", "out"):
        shared.pop(key)
    shared["families"] = list(shared["families"])
    return shared


# Modules that only read finished records into the reports: a change to them changes no run,
# so it must not split a study in two (a test checks that a search never imports them).
REPORT_ONLY_MODULES = ("report/pages.py", "report/peer_section.py", "report/run_section.py",
                       "report/study_section.py", "records/runs.py")


def code_digest() -> str:
    """A digest of the toolkit's own code (every Python file of the ``automl`` package but the
    report's): a study describes one version of the search, so a changed search starts a new
    study instead of joining seeds run by the old one. Documentation, benchmarks and the
    report-only modules do not change it."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        if path.is_file() and name not in REPORT_ONLY_MODULES:
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def study_id(config: SearchConfig) -> str:
    """``<task>-study-<hash>``: the same configuration with the same code always names the
    same study, so rerunning the same command finds it (and a new seed joins it)."""
    key = {**shared_config(study_config(config)), "code": code_digest()}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return f"{config.task}-study-{digest[:8]}"


def study_config(config: SearchConfig) -> SearchConfig:
    """A study is a benchmark: by default its budget is computed, so that every seed, rerun or
    machine trains the same models (``--time-budget`` asks for the wall clock instead)."""
    if config.budget is None and config.time_budget_minutes is None:
        return dataclasses.replace(config, budget=choices.COMPUTE)
    return config


def run_study(config: SearchConfig, seeds: list[int], *, verbose: bool = False, log=print) -> Path:
    """Run the search once per seed into ``<out>/<study_id>/<run_id>/``; returns the study folder.

    Without ``--budget`` or ``--time-budget`` the budget is the data's compute budget
    (:data:`automl.settings.choices.STUDY_UNITS`), with deterministic training.

    ``study.json`` names the task, the shared configuration and the run of each seed; it
    is written before each run trains, so an interruption loses nothing: rerunning the
    same command skips finished seeds (their ``summary.json`` exists), resumes the
    interrupted one from its own records, and starts the rest. A seed whose trials all
    failed stays in the study as a failed run.

    Raises:
        ValueError: an option is not allowed or no seed was given (before any folder is made).
        SystemExit(130): interrupted; rerun the same command to continue.
    """
    from automl.search.orchestrator import create_run, run_search
    from automl.tasks import check_config  # here: importing a study loads no TensorFlow

    config = study_config(config)
    check_config(config)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: got {seeds}; expected distinct whole numbers, e.g. 0 1 2")
    study_dir = Path(config.out) / study_id(config)
    state_path = study_dir / STUDY_FILE
    if state_path.exists():
        state = records.read_json(state_path)
    else:
        study_dir.mkdir(parents=True, exist_ok=True)
        state = {"study_id": study_dir.name, "task": config.task, "config": shared_config(config),
                 "code": code_digest(), "version": __version__, "seeds": [], "runs": {},
                 "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    state["seeds"] = sorted(set(state["seeds"]) | set(seeds))
    records.write_json(state_path, state)
    log(f"study folder: {study_dir} (seeds {' '.join(map(str, seeds))})")
    for seed in seeds:
        run_id = state["runs"].get(str(seed))
        if run_id is None and (run_id := _orphan(study_dir, seed, state)):
            # Recorded at once: a finished orphan is skipped below, and nothing else would
            # ever write it into the study.
            state["runs"][str(seed)] = run_id
            records.write_json(state_path, state)
        if run_id and (study_dir / run_id / "summary.json").exists():
            log(f"seed {seed}: finished in {run_id}; skipped")
            continue
        if run_id and (study_dir / run_id / "config.json").exists():
            log(f"seed {seed}: resuming {run_id}")
            run_dir = study_dir / run_id
        else:
            run_dir, _ = create_run(dataclasses.replace(config, seed=seed, out=str(study_dir)), log=log)
            state["runs"][str(seed)] = run_dir.name
            records.write_json(state_path, state)
            log(f"seed {seed}: {run_dir.name}")
        try:
            run_search(SearchConfig(), resume=run_dir, verbose=verbose, log=log)
        except SystemExit as stop:
            if stop.code != 1:
                raise
            log(f"seed {seed}: every trial failed; kept in the study as a failed run")
    return study_dir


def _orphan(study_dir: Path, seed: int, state: dict) -> str | None:
    """A run folder of ``seed`` that a kill left out of ``study.json`` (between making the
    folder and recording it), so that a rerun adopts it instead of starting a second one."""
    known = set(state["runs"].values())
    for config in sorted(study_dir.glob("*/config.json")):
        if config.parent.name not in known and records.read_json(config).get("seed") == seed:
            return config.parent.name
    return None
