"""Each task's headline beside the peers and our plain-validation ablation, with wall times."""

from __future__ import annotations

from automl.records.runs import STUDY_METRICS, Run, Study, members, ours, study_folders
from automl.records.values import dig, number
from automl.report.markdown import DASH, esc, fmt, table
from automl.report.study_section import fmt_mean_sd

COLUMNS = (("test accuracy", "accuracy"), ("AUC", "auc"), ("|sens − spec|", "sens_spec_gap"))


def budget(item: Study | Run) -> float | None:
    """The time budget (minutes) a study's or run's search had; None when it had none."""
    seeds = members(item)
    return number(dig(seeds[0].summary, "config", "time_budget_minutes")) if seeds else None


def latest_peers(task: str, runs: list[Run], studies: list[Study] = ()) -> list[Run]:
    """The latest run of each peer system of ``task`` (AutoKeras, the reference recipe)."""
    in_studies = study_folders(studies)
    latest: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: r.run_id):
        if run.task == task and run.folder.resolve() not in in_studies and run.summary.get("peer"):
            latest[_peer_name(run.summary)] = run
    return list(latest.values())


def companions(task: str, runs: list[Run], head: Study | Run, studies: list[Study] = ()) -> list[Run]:
    """What the headline is compared with: the latest run of each peer system of ``task``
    (AutoKeras, the reference recipe) and, where the headline selects on shift validation,
    the latest single run of ours with plain validation at the headline's time budget: the
    ablation that says how much comes from shift validation rather than from the search.

    The latest, not the best: a peer gets one measurement per campaign, and choosing among
    several by their test score would be choosing on test."""
    in_studies = study_folders(studies)
    found = latest_peers(task, runs, studies)
    if head.validation == "shift":
        plain = [r for r in ours(runs) if r.task == task and r.validation == "plain"
                 and r.folder.resolve() not in in_studies and budget(r) == budget(head)]
        if plain:
            found.append(max(plain, key=lambda r: r.run_id))
    return found


def peer_rows(task: str, runs: list[Run], head: Study | Run, studies: list[Study] = (), *,
              label: str = "cxr-automl") -> list[dict]:
    """One flat row (full precision) for the headline ``head`` (:mod:`automl.report.headline`),
    named ``label``, then one per companion: what it is, its validation, its time budget, its
    search minutes and its test scores (a study's as mean and sd over seeds). Only the
    headline sits beside the peers, never a search picked for doing better; each row shows
    its budget."""
    head_row = _row(head, label)
    return [head_row, *(_row(run, "cxr-automl, plain validation (ablation)")
                        for run in companions(task, runs, head, studies))]


def _row(item: Study | Run, ours_label: str) -> dict:
    if isinstance(item, Study):
        minutes = [m for m in (r.search_minutes for r in item.runs) if m is not None]
        return {
            "system": f"{ours_label} ({len(item.runs)} seeds)", "id": item.study_id,
            "validation": item.validation, "budget_minutes": budget(item),
            "search_minutes": sum(minutes) / len(minutes) if minutes else None,
            "search_minutes_max": max(minutes) if minutes else None,
            **{key: item.stats(key) for _, key in COLUMNS},
        }
    return {
        "system": _peer_name(item.summary) if item.summary.get("peer") else ours_label,
        "id": item.run_id, "validation": item.validation, "budget_minutes": budget(item),
        "search_minutes": item.search_minutes, "search_minutes_max": None,
        **{key: number(dig(item.test, *STUDY_METRICS[key])) for _, key in COLUMNS},
    }


def _peer_name(summary: dict) -> str:
    peer = summary["peer"]
    return str(peer.get("name", "peer") if isinstance(peer, dict) else peer)


def render_peer_rows(rows: list[dict], link=None) -> str:
    """The rows as a Markdown table; ``link(id)`` gives a row's link target, if any."""
    def name(row):
        label = f"`{esc(row['id'])}`"
        return f"[{label}]({link(row['id'])})" if link else label

    def score(value):
        return fmt_mean_sd(value) if isinstance(value, dict) else fmt(value)

    def minutes(row):
        if row["search_minutes"] is None:
            return DASH
        high = row["search_minutes_max"]
        return fmt(row["search_minutes"], 1) + (f" (max {fmt(high, 1)})" if high is not None else "")

    return table([{
        "system": esc(row["system"]), "run or study": name(row), "validation": esc(row["validation"]),
        "budget min": fmt(row["budget_minutes"], 0) if row["budget_minutes"] is not None else DASH,
        "search min": minutes(row),
        **{esc(col): score(row[key]) for col, key in COLUMNS},
    } for row in rows], "")
