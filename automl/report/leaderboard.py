"""A task's leaderboard of one version: studies first by mean validation objective, then runs."""

from __future__ import annotations

from automl.records.runs import Run, Study, ranked, ranked_studies
from automl.records.values import dig
from automl.report.markdown import DASH, anchor, esc, fmt, fmt_ci, table
from automl.report.run_section import gap
from automl.report.study_section import study_row


def run_row(run: Run, study: Study | None = None) -> dict:
    """A run's leaderboard row: test metrics with the accuracy interval, minutes, device."""
    s, test = run.summary, run.test
    kind = (f"seed {study.seeds[study.runs.index(run)]} of [{esc(study.study_id)}]"
            f"(#{anchor(study.study_id)})" if study else
            f"peer: {esc(s['peer'])}" if s.get("peer") else
            f"external: {esc(s['external'])}" if s.get("external") else "single run")
    return {
        "run or study": f"[{esc(run.run_id)}](#{anchor(run.run_id)}) ({kind})"
                        + ("" if test else " (validation only)"),
        "val objective": f"{esc(dig(s, 'objective', 'name') or DASH)} {fmt(dig(s, 'objective', 'value'))}",
        "test accuracy [95% CI]": fmt_ci(dig(test, "accuracy"), dig(test, "ci", "accuracy")),
        "AUC": fmt(dig(test, "auc")),
        "macro-F1": fmt(dig(test, "f1_macro")),
        "sens": fmt(dig(test, "sensitivity")),
        "spec": fmt(dig(test, "specificity")),
        "gap": gap(test),
        "ECE": fmt(dig(test, "ece")),
        "minutes": fmt(run.search_minutes, 1),
        "device": esc(dig(s, "env", "device") or DASH),
    }


def render_leaderboard(runs: list[Run], studies: list[Study] = (), *, empty: str = "_No runs for this task._",
                       all_studies: list[Study] = ()) -> str:
    """Studies first (by mean validation objective), then every run (by validation objective);
    test columns ``–`` where a run scored no test split. The caller passes the runs and studies
    of one version: runs of other versions or budgets are never ranked together with them.
    ``all_studies``: every study, to name the study a run is a seed of."""
    member_of = {id(r): st for st in [*studies, *all_studies] for r in st.runs}
    rows = [study_row(st) for st in ranked_studies(list(studies))]
    rows += [run_row(r, member_of.get(id(r))) for r in ranked(runs)]
    return table(rows, empty)
