"""Each task's headline (its best study, else its best run) beside the published numbers."""

from __future__ import annotations

import json
from importlib import resources

from automl.records.runs import STUDY_METRICS, Run, Study, contenders, members, ours
from automl.records.values import dig, number
from automl.report.markdown import DASH, anchor, esc, fmt, table
from automl.report.study_section import fmt_mean_sd

# Published numbers shown beside a task's best run; bacterial-vs-viral is context for 3-class.
ANCHOR_TASKS = {"multiclass": ("multiclass", "subtype")}
HEADLINE_METRICS = (("accuracy", "accuracy"), ("AUC", "auc"), ("sensitivity", "sensitivity"),
                    ("specificity", "specificity"), ("macro-F1", "f1_macro"))
OFFICIAL_TEST_N = 624


def load_packaged(name: str) -> dict:
    """A JSON file shipped beside this module (``anchors.json``, ``targets.json`` in
    ``automl/report/``)."""
    return json.loads(resources.files("automl.report").joinpath(name).read_text("utf-8"))


def load_anchors() -> dict:
    """The published numbers shipped with the package (``automl/report/anchors.json``)."""
    return load_packaged("anchors.json")


def task_anchors(anchors: dict, task: str) -> list[dict]:
    """The published rows shown beside ``task`` (:data:`ANCHOR_TASKS`)."""
    return [a for a in anchors["anchors"] if a["task"] in ANCHOR_TASKS.get(task, (task,))]


def headlines(runs: list[Run], studies: list[Study]) -> dict[str, Study | Run]:
    """Each task's headline: its study (two or more scored seeds, not superseded by a rerun
    with newer code: :func:`automl.records.runs.current_studies`) with the best mean validation
    objective where it has one (a study is several seeds, never one lucky draw),
    else its best run by validation objective; shift-validation ones rank first
    (:func:`automl.records.runs.ranked`)."""
    out = {}
    for task in dict.fromkeys([*(st.task for st in studies), *(r.task for r in ours(runs))]):
        # A study heads its task once at least two seeds have a validation objective.
        ranked_heads = contenders(task, runs, studies)
        if ranked_heads:  # nothing yet while a study's first seed is running
            out[task] = ranked_heads[0]
    return out


def headline_value(head: Study | Run, metric: str, statistic: str = "mean") -> float | None:
    """A test metric of the headline: the study's mean (or ``statistic``: sd) over seeds, or
    the run's value (a single run has no sd)."""
    if isinstance(head, Study):
        stats = head.stats(metric)
        return None if stats is None or (statistic == "sd" and stats["n"] < 2) else stats[statistic]
    return number(dig(head.test, *STUDY_METRICS[metric])) if statistic == "mean" else None


def head_id(head: Study | Run) -> str:
    return head.study_id if isinstance(head, Study) else head.run_id


def _anchor_value(entry: dict, metric: str) -> str:
    qualifier, value = dig(entry, "qualifiers", metric), fmt(entry.get(metric))
    return f"{qualifier} {value}" if qualifier and value != DASH else value


def render_headline(runs: list[Run], anchors: dict, studies: list[Study] = ()) -> str:
    """Each task's headline (:func:`headlines`) beside that task's published numbers."""
    rows = []
    for task, head in headlines(runs, list(studies)).items():
        # The whole mark: a cut would drop the "-dirty" that says the code was not committed.
        commits = ", ".join(sorted({str(dig(r.summary, "env", "git_commit") or DASH)
                                    for r in members(head)}))
        if isinstance(head, Study):
            scored = head.scored_seeds
            failed = f"; {len(head.runs) - scored} seed(s) failed" if scored < len(head.runs) else ""
            system = f"cxr-automl {task} study ({esc(head.study_id)}, mean of {scored} seeds{failed})"
            values = {col: fmt_mean_sd(head.stats(key)) for col, key in HEADLINE_METRICS}
            n = {str(dig(r.test, "n")) for r in head.runs if r.test}
            test_n = esc(", ".join(sorted(n))) if n else "validation only"
        else:
            system = f"cxr-automl {task} ({esc(head.run_id)})"
            values = {col: fmt(dig(head.test, key)) for col, key in HEADLINE_METRICS}
            test_n = esc(head.test["n"]) if head.test else "validation only"
        rows.append({"task": task, "system": f"[{system}]({task}.md#{anchor(head_id(head))})",
                     "test n": test_n, **values, "source": f"this project (commit {esc(commits)})"})
        rows += [{
            "task": esc(a["task"]), "system": esc(a["system"]), "test n": str(OFFICIAL_TEST_N),
            **{col: _anchor_value(a, key) for col, key in HEADLINE_METRICS},
            "source": esc("; ".join(x for x in (a.get("source"), a.get("notes")) if x)),
        } for a in task_anchors(anchors, task)]
    if not rows:
        return "_No runs yet: nothing to compare._"
    return "\n\n".join([table(rows, ""), (
        f"Published numbers: {esc(anchors['test_split'])}. {esc(anchors['caveat'])} Our rows: where "
        "a task has a study, the study with the best mean validation objective (a study rerun with "
        "the same configuration on newer code is superseded and heads nothing), as its mean ± "
        "standard deviation over seeds; otherwise the single run with the best validation "
        "objective. Shift-validation runs and studies rank ahead of plain-validation ones (their "
        "objectives are not comparable numbers), so \"best\" is best within that order. The test "
        f"split is scored once per run, after selection; a test n other than {OFFICIAL_TEST_N} "
        "means other data, not comparable with the published rows. ≈ approximate, > lower bound "
        "only.")])
