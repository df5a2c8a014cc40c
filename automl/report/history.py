"""``history.md``: one row per study and per single run that heads no page, pointing to its records."""

from __future__ import annotations

from pathlib import Path

from automl.records.runs import TASK_ORDER, Run, Study, study_folders
from automl.records.values import dig
from automl.report.configuration import budget_text, describe, run_config
from automl.report.markdown import DASH, esc, fmt, rel, table
from automl.report.study_section import fmt_mean_sd


def _newest_first(items, key):
    return sorted(items, key=key, reverse=True)


def render_history(runs: list[Run], studies: list[Study], shown: set[str], out: Path) -> str:
    """The page: studies, then single runs, that no task page shows (``shown``: the ids of the
    studies and runs the task pages render), newest first within each task. A row links the
    folder of its records; nothing here ranks one row against another."""
    studies = [st for st in studies if st.study_id not in shown]
    in_studies = study_folders(studies) | {r.folder.resolve() for st in studies for r in st.runs}
    single = [r for r in runs if r.run_id not in shown and r.folder.resolve() not in in_studies
              and r.folder.resolve() not in _shown_seed_folders(runs, shown)]
    study_rows = [{
        "task": esc(st.task), "study": f"[{esc(st.study_id)}]({rel(st.folder, out)})",
        "version": esc(st.version), "code": esc(st.state.get("code") or DASH),
        "made": esc(st.created_at[:10] or DASH), "configuration": esc(describe(st)),
        "seeds": str(st.scored_seeds), "test accuracy": fmt_mean_sd(st.stats("accuracy")),
        "AUC": fmt_mean_sd(st.stats("auc")), "|sens − spec|": fmt_mean_sd(st.stats("sens_spec_gap")),
        "macro-F1": fmt_mean_sd(st.stats("f1_macro")),
    } for st in _newest_first(studies, key=lambda st: (_task_rank(st.task), st.created_at, st.study_id))]
    run_rows = [{
        "task": esc(r.task), "run": f"[{esc(r.run_id)}]({rel(r.folder, out)})", "version": esc(r.version),
        "what": esc(_peer(r) or "single run"),
        "configuration": DASH if _peer(r) else esc(describe(Study(r.folder, {"task": r.task}, [r], [0]))),
        "budget": esc(budget_text(run_config(r) or dig(r.summary, "config") or {})),
        "test accuracy": fmt(dig(r.test, "accuracy")), "AUC": fmt(dig(r.test, "auc")),
        "|sens − spec|": fmt(dig(r.test, "bias", "sens_spec_gap")),
    } for r in _newest_first(single, key=lambda r: (_task_rank(r.task), r.run_id))]
    return "\n\n".join([
        "# Older studies and runs", "[Back to the index](README.md)",
        ("Every study and single run that heads no task page: made with another version of the "
         "toolkit, with another configuration than the task's default, or both. One row each, "
         "newest first within a task, generated from the records the link points to (every "
         "number, trial and score is there). The rows are not ranked against each other or "
         "against a headline: their code, budget or configuration differ. Configuration: "
         "`default` or how it differs from today's default of its task; code: the digest of the "
         "search code a study ran."),
        "## Studies", table(study_rows, "_None._"),
        "## Single runs", table(run_rows, "_None._"),
    ]) + "\n"


def _peer(run: Run) -> str:
    peer = run.summary.get("peer")
    if not peer:
        return ""
    return f"peer: {peer.get('name', 'peer') if isinstance(peer, dict) else peer}"


def _shown_seed_folders(runs: list[Run], shown: set[str]) -> set[Path]:
    return {r.folder.resolve() for r in runs if r.run_id in shown}


def _task_rank(task: str) -> int:
    # Newest first is a reverse sort: the first task must rank highest.
    return -TASK_ORDER.index(task) if task in TASK_ORDER else -len(TASK_ORDER)
