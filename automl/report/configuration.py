"""Which configuration a study ran: its task's default (what ``automl search --task T`` runs
with no option) or how it differs from that, and its budget.

A study is *of the default configuration* when the configuration its runs were made with
(their ``config.json``, budget fields filled in as the run filled them) equals what the task's
default fills in on real data, apart from where the data is, where the runs go and the seed.
Comparing the filled-in values, not the options as typed, makes ``--refit cv:5`` on the binary
task the default it is, and keeps a study whose defaults were other at the time (another
budget, no warm-start portfolio) apart from today's default.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from automl.records.runs import Run, Study
from automl.records.values import number
from automl.settings.run_config import SearchConfig

#: Fields that say where a run read and wrote and which seed it drew: never part of the
#: configuration a study is compared on.
NOT_CONFIGURATION = ("data", "out", "seed")
#: The wall-clock budget's kind (``time_budget_minutes``).
MINUTES = "minutes"


def budget_of(config: dict) -> tuple[str, float | None]:
    """A configuration's search budget as ``(kind, amount)``: its ``budget`` field (e.g.
    ``compute:N``), or, where the field is missing or names no amount (records made before
    budgets had a kind), the wall-clock budget ``time_budget_minutes`` in minutes."""
    budget = config.get("budget")
    if isinstance(budget, dict):
        kind, amount = budget.get("kind"), budget.get("amount", budget.get("value"))
    elif isinstance(budget, str) and ":" in budget:
        kind, _, amount = budget.partition(":")
    else:
        kind, amount = budget, None
    if kind in (None, "", "time", "wall", "wall-clock", MINUTES):
        return MINUTES, number(config.get("time_budget_minutes")) if amount is None else _amount(amount)
    return str(kind), _amount(amount)


def _amount(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def budget_text(config: dict) -> str:
    """``18 min`` (wall clock) or ``compute 40`` for a configuration's budget; ``–`` for none."""
    kind, amount = budget_of(config)
    if amount is None:
        return "–"
    return f"{amount:g} min" if kind == MINUTES else f"{kind} {amount:g}"


def default_config(task: str) -> dict:
    """What ``automl search --task TASK`` runs with on real data, every budget field filled in."""
    return _comparable(dataclasses.asdict(_Recorded(task=task).with_defaults(synthetic=False)))


def run_config(run: Run) -> dict | None:
    """The configuration ``run`` was made with, read as ``--resume`` reads it (options added
    since take the value that means "as before they existed"); None when unreadable."""
    path = Path(run.folder) / "config.json"
    try:
        return _read_config(str(path), path.stat().st_mtime_ns)
    except OSError:
        return None


if "budget" in {f.name for f in dataclasses.fields(SearchConfig)}:
    _Recorded = SearchConfig
else:
    @dataclasses.dataclass
    class _Recorded(SearchConfig):
        """A recorded configuration as ``--resume`` reads it, with the ``budget`` field that
        records may name their budget's kind in (a record without one had the wall-clock budget)."""

        budget: object = None


@functools.lru_cache(maxsize=512)
def _read_config(path: str, mtime_ns: int) -> dict | None:
    """The comparable configuration in ``path`` (cached: a report asks for each run's many times)."""
    try:
        return _comparable(dataclasses.asdict(_Recorded.load(Path(path).parent)))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _comparable(config: dict) -> dict:
    """``config`` without the fields that are no part of a configuration, its budget as one
    ``budget`` entry (:func:`budget_of`) and lists for tuples."""
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()
              if k not in NOT_CONFIGURATION and k not in ("budget", "time_budget_minutes")}
    return {**values, "budget": budget_of(config)}


def differences(study: Study) -> list[str] | None:
    """How the study's configuration differs from its task's default, as ``name=value``
    (sorted); ``[]`` for the default; None when its runs' configuration cannot be read or its
    seeds do not share one."""
    configs = [run_config(r) for r in study.runs]
    if not configs or None in configs or any(c != configs[0] for c in configs):
        return None
    ours, default = configs[0], default_config(study.task)
    return [f"{name}={_value(name, ours.get(name))}" for name in sorted(set(ours) | set(default))
            if ours.get(name) != default.get(name)]


def _value(name: str, value) -> str:
    if name == "budget":
        kind, amount = value
        return f"{amount:g} min" if kind == MINUTES and amount is not None else f"{kind}:{amount}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def is_default(study: Study) -> bool:
    """Whether ``study`` ran its task's default configuration (:func:`differences` is empty)."""
    return differences(study) == []


def describe(study: Study) -> str:
    """``default`` or the differences from it (``refit=none, portfolio=none``)."""
    found = differences(study)
    if found is None:
        return "unreadable configuration"
    return "default" if not found else ", ".join(found)
