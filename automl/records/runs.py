"""Finished runs read back from their folders, and their ranking by validation objective."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from automl import records
from automl.records.values import dig, number

SKIP_DIRS = {"tuner", "tb"}
#: The version of records made before runs recorded the toolkit's version: every one of them is
#: older than 0.9.0, the first version that records it.
UNVERSIONED = "pre-0.9"
TASK_ORDER = ("binary", "multiclass", "autoencoder")
_TASK_NAME = re.compile(r"^[a-z0-9_-]+$")  # becomes a file name: <task>.md


@dataclass
class Run:
    """One run folder: its summary plus the optional side files, read but not interpreted."""

    folder: Path
    summary: dict
    trials: list[dict] = field(default_factory=list)
    knn: list[dict] = field(default_factory=list)
    tsne: dict | None = None
    command: str | None = None
    pngs: tuple[str, ...] = ()  # names of the PNG files present in the folder
    problems: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.summary["task"]

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.folder.name)

    @property
    def test(self) -> dict | None:
        return self.summary["test"] if isinstance(self.summary.get("test"), dict) else None

    @property
    def score(self) -> float | None:
        """Validation objective, negated for ``direction: min`` so that higher is better."""
        value = number(dig(self.summary, "objective", "value"))
        if value is None:
            return None
        return -value if dig(self.summary, "objective", "direction") == "min" else value

    @property
    def search_minutes(self) -> float | None:
        """Wall minutes of the search (resumed parts included) and of its refit, where it had
        one (``--time-budget`` covers both), None where not recorded."""
        seconds = number(self.summary.get("search_seconds"))
        refit = self.summary.get("refit")
        spent = number(refit.get("seconds")) if isinstance(refit, dict) else None
        return None if seconds is None else (seconds + (spent or 0.0)) / 60

    @property
    def objective(self) -> str:
        """The name of the validation objective the run selected on ("" if none recorded)."""
        return str(dig(self.summary, "objective", "name") or "")

    @property
    def validation(self) -> str:
        """The validation mode the run selected on (``plain`` for runs recorded before
        shift validation existed, and for peers)."""
        return str(dig(self.summary, "config", "validation") or "plain")

    @property
    def version(self) -> str:
        """The toolkit version that made the run (:data:`UNVERSIONED` before it was recorded)."""
        return str(dig(self.summary, "env", "version") or UNVERSIONED)


def load_run(folder: Path) -> Run:
    """Read one run folder; raises ValueError when its summary.json is unusable."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"summary.json unreadable: {error}") from error
    if not isinstance(summary, dict) or not _TASK_NAME.match(str(summary.get("task", ""))):
        raise ValueError("summary.json is not an object with a task name like 'binary'")
    run = Run(folder, summary, pngs=tuple(sorted(p.name for p in folder.glob("*.png"))))
    run.trials = records.read_jsonl(folder / "trials.jsonl", run.problems)
    run.knn = records.read_jsonl(folder / "knn.jsonl", run.problems)
    if (folder / "tsne.json").exists():
        try:
            run.tsne = json.loads((folder / "tsne.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            run.problems.append(f"tsne.json unreadable: {error}")
    if (folder / "command.txt").exists():
        run.command = (folder / "command.txt").read_text(encoding="utf-8", errors="replace").strip()
    return run


def load_runs(runs: Path) -> tuple[list[Run], list[tuple[Path, str]]]:
    """Run folders under ``runs`` (any depth, skipping ``tuner``/``tb``), sorted by task then
    run id, and ``(folder, message)`` for each folder whose summary could not be used."""
    found, problems = [], []
    for root, dirs, files in os.walk(runs):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        if "summary.json" in files:
            try:
                found.append(load_run(Path(root)))
            except ValueError as error:
                problems.append((Path(root), str(error)))
    order = {t: i for i, t in enumerate(TASK_ORDER)}
    found.sort(key=lambda r: (order.get(r.task, len(order)), r.task, r.run_id, str(r.folder)))
    return found, sorted(problems, key=lambda p: str(p[0]))


def ranked(runs: list[Run]) -> list[Run]:
    """Runs by validation objective, best first (never by test); runs without one last.

    Objectives of different kinds are not comparable numbers: a pooled shift-validation
    AUC is lower than a clean-validation AUC of the same model, and a loss is not an AUC.
    Runs selected under shift validation (the recorded ``config.validation``, the default
    design) rank ahead of the others, runs selected on a loss after those selected on a
    score, runs selected on the task's default objective (no ``--objective`` recorded)
    ahead of those selected on one a user named, and runs of one objective (by name)
    together: the objective value orders runs only among runs of the same objective.
    """
    return sorted(runs, key=lambda r: (r.score is None, r.validation != "shift", _is_loss(r),
                                       *_objective_group(r), -(r.score or 0.0), r.run_id))


def _objective_group(run: Run) -> tuple[bool, str]:
    """Runs on the task's default objective (no ``--objective`` recorded) first, then the runs
    of each objective a user named, by name: a ``val_accuracy`` is not a better ``val_auc``."""
    return dig(run.summary, "config", "objective") is not None, run.objective


def _is_loss(run: Run) -> bool:
    """Loss objectives (``*_loss``, e.g. the label-free ``val_normal_loss``) are yet another
    kind of number: such runs rank after those selected on a score."""
    return dig(run.summary, "objective", "direction") == "min"


def ours(runs: list[Run]) -> list[Run]:
    """Runs of this toolkit (not the peer systems benchmarked beside it, nor another system's
    predictions scored by ``automl evaluate``)."""
    return [r for r in runs if not r.summary.get("peer") and not r.summary.get("external")]


# The test metrics a study aggregates: name -> keys in a split's metrics.
STUDY_METRICS = {"accuracy": ("accuracy",), "balanced_accuracy": ("balanced_accuracy",),
                 "f1_macro": ("f1_macro",), "auc": ("auc",), "sensitivity": ("sensitivity",),
                 "specificity": ("specificity",), "sens_spec_gap": ("bias", "sens_spec_gap"),
                 "ece": ("ece",)}


@dataclass
class Study:
    """A study folder (``study.json``) and its runs, one per seed, in seed order."""

    folder: Path
    state: dict
    runs: list[Run]
    seeds: list[int]

    @property
    def study_id(self) -> str:
        return str(self.state.get("study_id") or self.folder.name)

    @property
    def task(self) -> str:
        return str(self.state.get("task"))

    @property
    def validation(self) -> str:
        return self.runs[0].validation if self.runs else "plain"

    @property
    def version(self) -> str:
        """The toolkit version of the study (``study.json``, else its first run's;
        :data:`UNVERSIONED` before it was recorded)."""
        return str(self.state.get("version") or (self.runs[0].version if self.runs else UNVERSIONED))

    @property
    def created_at(self) -> str:
        """When the study folder was made (UTC, ISO 8601; "" where not recorded)."""
        return str(self.state.get("created_at") or "")

    def values(self, metric: str, split: str = "test") -> list[float | None]:
        """Each seed's value of ``metric`` (a key of :data:`STUDY_METRICS`), None where missing."""
        keys = STUDY_METRICS[metric]
        return [number(dig(r.summary, split, *keys)) for r in self.runs]

    def stats(self, metric: str, split: str = "test") -> dict | None:
        """Mean, sample standard deviation, min and max over the seeds that have a value."""
        values = [v for v in self.values(metric, split) if v is not None]
        if not values:
            return None
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
        return {"mean": mean, "sd": sd, "min": min(values), "max": max(values), "n": len(values)}

    @property
    def scored_seeds(self) -> int:
        """How many of its runs finished with a validation objective (a seed whose trials all
        failed has none)."""
        return sum(r.score is not None for r in self.runs)

    @property
    def score(self) -> float | None:
        """Mean validation objective over its runs (higher is better), None if a run has none."""
        scores = [r.score for r in self.runs]
        return None if not scores or None in scores else sum(scores) / len(scores)


def members(head: Study | Run) -> list[Run]:
    """The runs behind a headline: a study's seeds, or the run itself."""
    return head.runs if isinstance(head, Study) else [head]


def load_studies(root: Path, runs: list[Run]) -> tuple[list[Study], list[tuple[Path, str]]]:
    """Study folders under ``root`` with their runs (from ``runs``), sorted by task then id,
    and ``(folder, message)`` for each unreadable ``study.json``."""
    studies, problems = [], []
    by_folder = {r.folder.resolve(): r for r in runs}
    for state_path in sorted(Path(root).rglob("study.json")):
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            seeded = sorted((int(seed), str(run_id)) for seed, run_id in state["runs"].items())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
                ValueError, AttributeError) as error:
            problems.append((state_path.parent, f"study.json unreadable: {error}"))
            continue
        members = [(seed, by_folder.get((state_path.parent / run_id).resolve())) for seed, run_id in seeded]
        members = [(seed, run) for seed, run in members if run is not None]
        studies.append(Study(state_path.parent, state, [r for _, r in members], [s for s, _ in members]))
    order = {t: i for i, t in enumerate(TASK_ORDER)}
    studies.sort(key=lambda s: (order.get(s.task, len(order)), s.task, s.study_id))
    return studies, problems


# A study stands for its configuration once this many of its seeds have a validation
# objective: fewer is one draw, not a study.
MIN_STUDY_SEEDS = 2


def ranked_studies(studies: list[Study]) -> list[Study]:
    """Studies by mean validation objective, best first, as :func:`ranked` orders runs."""
    def kind(study: Study) -> tuple:
        first = study.runs[0] if study.runs else None
        return (_is_loss(first), *_objective_group(first)) if first else (False, False, "")

    return sorted(studies, key=lambda s: (s.score is None, s.validation != "shift", *kind(s),
                                          -(s.score or 0.0), s.study_id))


def study_folders(studies: list[Study]) -> set[Path]:
    """The folders of every study's runs (resolved): to tell a study's seeds from lone runs."""
    return {r.folder.resolve() for st in studies for r in st.runs}
