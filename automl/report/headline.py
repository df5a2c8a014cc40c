"""Each task's headline: what its default configuration gives on the current version, beside
the published numbers.

The headline answers "what will ``automl study --task T`` give me?", not "which configuration
ever looked best on validation": it is the latest study of the task's default configuration
(:mod:`automl.report.configuration`) made with the current version, whatever it scores. When
the current version has none, the latest such study of an older version stands in, marked
with its version; a task without any such study shows its latest study (marked as another
configuration), or else its latest single run. Nothing else is ranked against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from automl import __version__
from automl.records.runs import MIN_STUDY_SEEDS, STUDY_METRICS, TASK_ORDER, Run, Study, members, ours
from automl.records.values import dig, number
from automl.report.configuration import budget_text, describe
from automl.report.markdown import DASH, anchor, esc, fmt, table
from automl.report.study_section import fmt_mean_sd

# Published numbers shown beside a task's headline; bacterial-vs-viral is context for 3-class.
ANCHOR_TASKS = {"multiclass": ("multiclass", "subtype")}
HEADLINE_METRICS = (("accuracy", "accuracy"), ("AUC", "auc"), ("sensitivity", "sensitivity"),
                    ("specificity", "specificity"), ("macro-F1", "f1_macro"))
OFFICIAL_TEST_N = 624
#: What a headline is, best first: the default on the current version, the default on an older
#: version, another configuration's study, a single run.
CURRENT, OLDER, OTHER, SINGLE = "current", "older version", "other configuration", "single run"


@dataclass(frozen=True)
class Headline:
    """A task's headline: the study (or run) and which kind of stand-in it is (:data:`CURRENT` ...)."""

    item: Study | Run
    kind: str

    @property
    def id(self) -> str:
        return head_id(self.item)

    @property
    def version(self) -> str:
        return self.item.version

    @property
    def label(self) -> str:
        """``cxr-automl, default configuration, version V`` (or the stand-in's kind)."""
        what = "default configuration" if self.kind in (CURRENT, OLDER) else self.kind
        return f"cxr-automl, {what}, version {self.version}"

    @property
    def configuration(self) -> str:
        """``default`` or how it differs (:func:`automl.report.configuration.describe`)."""
        if isinstance(self.item, Study):
            return describe(self.item)
        return describe(Study(self.item.folder, {"task": self.item.task}, [self.item], [0]))

    @property
    def budget(self) -> str:
        seeds = members(self.item)
        return budget_text(dig(seeds[0].summary, "config") or {}) if seeds else DASH


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


def headline_of(task: str, runs: list[Run], studies: list[Study], *,
                version: str = __version__) -> Headline | None:
    """The headline of ``task`` (see the module docstring); None when it has no run of ours.

    A study counts once :data:`automl.records.runs.MIN_STUDY_SEEDS` of its seeds have a
    validation objective (fewer is one draw, not a study); "latest" is by the study's
    ``created_at`` (a run's id carries its UTC start).
    """
    full = [st for st in studies if st.task == task and st.scored_seeds >= MIN_STUDY_SEEDS]
    default = [st for st in full if describe(st) == "default"]
    latest = sorted(default, key=lambda st: (st.version == version, st.created_at, st.study_id))
    if latest:
        return Headline(latest[-1], CURRENT if latest[-1].version == version else OLDER)
    if full:
        return Headline(max(full, key=lambda st: (st.created_at, st.study_id)), OTHER)
    single = sorted((r for r in ours(runs) if r.task == task and r.score is not None),
                    key=lambda r: r.run_id)
    return Headline(single[-1], SINGLE) if single else None


def headlines(runs: list[Run], studies: list[Study], *, version: str = __version__) -> dict[str, Headline]:
    """Each task's :func:`headline_of`, in the report's task order."""
    order = {t: i for i, t in enumerate(TASK_ORDER)}
    tasks = sorted({*(st.task for st in studies), *(r.task for r in ours(runs))},
                   key=lambda t: (order.get(t, len(order)), t))
    found = {task: headline_of(task, runs, studies, version=version) for task in tasks}
    return {task: head for task, head in found.items() if head is not None}


def headline_note(task: str, head: Headline | None, version: str = __version__) -> str:
    """One sentence on what heads ``task``: the default on this version, or which stand-in."""
    name = f"`{esc(head.id)}`" if head else ""
    if head is None:
        return f"{task}: no run yet."
    if head.kind == CURRENT:
        return f"{task}: the default configuration on version {esc(version)}, study {name}."
    if head.kind == OLDER:
        return (f"{task}: no study of the default configuration on version {esc(version)} yet; shown is "
                f"the latest one, study {name}, made with version **{esc(head.version)}**.")
    if head.kind == OTHER:
        return (f"{task}: no study of the default configuration exists; shown is the latest study, "
                f"{name} (version **{esc(head.version)}**), which differs from the default in "
                f"{esc(head.configuration)}.")
    return (f"{task}: no study exists; shown is the latest single run, {name} (version "
            f"**{esc(head.version)}**; configuration: {esc(head.configuration)}): one draw of the seed.")


def headline_value(head: Headline | Study | Run, metric: str, statistic: str = "mean") -> float | None:
    """A test metric of the headline: the study's mean (or ``statistic``: sd) over seeds, or
    the run's value (a single run has no sd)."""
    item = head.item if isinstance(head, Headline) else head
    if isinstance(item, Study):
        stats = item.stats(metric)
        return None if stats is None or (statistic == "sd" and stats["n"] < 2) else stats[statistic]
    return number(dig(item.test, *STUDY_METRICS[metric])) if statistic == "mean" else None


def head_id(head: Study | Run) -> str:
    return head.study_id if isinstance(head, Study) else head.run_id


def hardware(item: Study | Run) -> str:
    """The device(s) the seeds ran on, as recorded."""
    return "; ".join(sorted({str(dig(r.summary, "env", "device") or DASH) for r in members(item)}))


def _anchor_value(entry: dict, metric: str) -> str:
    qualifier, value = dig(entry, "qualifiers", metric), fmt(entry.get(metric))
    return f"{qualifier} {value}" if qualifier and value != DASH else value


def _our_row(task: str, head: Headline) -> dict:
    item = head.item
    if isinstance(item, Study):
        scored = item.scored_seeds
        failed = f"; {len(item.runs) - scored} seed(s) failed" if scored < len(item.runs) else ""
        seeds = f"{scored}{failed}"
        values = {col: fmt_mean_sd(item.stats(key)) for col, key in HEADLINE_METRICS}
        n = {str(dig(r.test, "n")) for r in item.runs if r.test}
        test_n = esc(", ".join(sorted(n))) if n else "validation only"
    else:
        seeds = "1"
        values = {col: fmt(dig(item.test, key)) for col, key in HEADLINE_METRICS}
        test_n = esc(item.test["n"]) if item.test else "validation only"
    label = "default configuration" if head.kind in (CURRENT, OLDER) else head.kind
    return {"task": task,
            "system": f"[cxr-automl, {label} (`{esc(head.id)}`)]({task}.md#{anchor(head.id)})",
            "version": esc(head.version), "budget": esc(head.budget), "seeds": seeds, "test n": test_n,
            **values, "source": f"this toolkit on {esc(hardware(item))}"}


def render_headline(runs: list[Run], anchors: dict, studies: list[Study] = (), *,
                    heads: dict[str, Headline] | None = None) -> str:
    """Each task's headline (:func:`headlines`) beside that task's published numbers."""
    heads = headlines(runs, list(studies)) if heads is None else heads
    rows, notes = [], []
    for task, head in heads.items():
        notes.append(f"- {headline_note(task, head)}")
        rows.append(_our_row(task, head))
        rows += [{
            "task": esc(a["task"]), "system": esc(a["system"]), "version": DASH, "budget": DASH,
            "seeds": DASH, "test n": str(OFFICIAL_TEST_N),
            **{col: _anchor_value(a, key) for col, key in HEADLINE_METRICS},
            "source": esc("; ".join(x for x in (a.get("source"), a.get("notes")) if x)),
        } for a in task_anchors(anchors, task)]
    if not rows:
        return "_No runs yet: nothing to compare._"
    return "\n\n".join(["\n".join(notes), table(rows, ""), (
        f"Published numbers: {esc(anchors['test_split'])}. {esc(anchors['caveat'])} Our rows: mean ± "
        "standard deviation over the study's seeds, each seed scored once on the test split after "
        f"every choice was made on validation. A test n other than {OFFICIAL_TEST_N} means other "
        "data, not comparable with the published rows. ≈ approximate, > lower bound only. The "
        "subtype row (bacterial vs viral, pneumonia images only) is context for the 3-class task, "
        "not the same question.")])
