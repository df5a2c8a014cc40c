"""Markdown report pages from run records: records in, Markdown out; the only place numbers are rounded."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from automl.records import dig, number
from automl.records.runs import (
    STUDY_METRICS,
    Run,
    Study,
    contenders,
    current_studies,
    load_runs,
    load_studies,
    members,
    ours,
    ranked,
    ranked_studies,
)
from automl.report.markdown import (
    DASH,
    anchor,
    esc,
    fmt,
    fmt_ci,
    rel,
    table,
)
from automl.report.peer_section import comparator, peer_rows, render_peer_rows
from automl.report.run_section import gap, render_run
from automl.report.study_section import fmt_mean_sd, render_study, study_row

# Published numbers shown beside a task's best run; bacterial-vs-viral is context for 3-class.
ANCHOR_TASKS = {"multiclass": ("multiclass", "subtype")}
HEADLINE_METRICS = (("accuracy", "accuracy"), ("AUC", "auc"), ("sensitivity", "sensitivity"),
                    ("specificity", "specificity"), ("macro-F1", "f1_macro"))
OFFICIAL_TEST_N = 624


def load_anchors() -> dict:
    """The published numbers shipped with the package (``automl/anchors.json``)."""
    return load_packaged("anchors.json")


def run_row(run: Run, study: Study | None = None) -> dict:
    """A run's leaderboard row: test metrics with the accuracy interval, minutes, device."""
    s, test = run.summary, run.test
    kind = (f"seed {study.seeds[study.runs.index(run)]} of [{esc(study.study_id)}]"
            f"(#{anchor(study.study_id)})" if study else
            f"peer: {esc(s['peer'])}" if s.get("peer") else "single run")
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


def render_leaderboard(runs: list[Run], studies: list[Study] = ()) -> str:
    """Studies first (by mean validation objective), then every run (by validation objective);
    test columns ``–`` where a run scored no test split."""
    member_of = {id(r): st for st in studies for r in st.runs}
    current = {id(st) for st in current_studies(list(studies))}
    rows = [study_row(st, superseded=id(st) not in current) for st in ranked_studies(list(studies))]
    rows += [run_row(r, member_of.get(id(r))) for r in ranked(runs)]
    return table(rows, "_No runs for this task._")


def render_task(task: str, runs: list[Run], out: Path, studies: list[Study] = (),
                anchors: dict | None = None) -> str:
    """The ``<task>.md`` page: leaderboard, then one section per study and per run (by id)."""
    names = sorted({esc(dig(r.summary, "objective", "name")) for r in runs})
    mixed = f" Runs use different objectives ({', '.join(names)})." if len(names) > 1 else ""
    if len(names) > 1 and len({r.validation for r in runs}) > 1:
        mixed += (" Shift-validation runs (`val_shift_*`, the default) rank first, then the "
                  "others, each kind by its own value.")
    anchors = anchors or load_anchors()
    task_anchors = [a for a in anchors["anchors"] if a["task"] in ANCHOR_TASKS.get(task, (task,))]
    study_text = (f" {len(studies)} study(ies) first: their cells are the mean ± standard deviation "
                  "over seeds (not an interval), ranked by mean validation objective; each "
                  "study's section gives min–max and every seed.") if studies else ""
    return "\n\n".join([
        f"# {esc(task)}", "[Back to the index](README.md)",
        (f"{len(runs)} run(s), ranked by validation objective (never by test).{study_text} Test "
         "columns come from the test split, scored once after selection; `–` marks a missing "
         f"value or a validation-only run.{mixed}"),
        "## Leaderboard", render_leaderboard(runs, studies),
        *(["## Studies", *[render_study(st, out, task_anchors)
                           for st in sorted(studies, key=lambda st: st.study_id)]] if studies else []),
        "## Runs", *[render_run(r, out) for r in sorted(runs, key=lambda r: r.run_id)],
    ]) + "\n"


def _anchor_value(entry: dict, metric: str) -> str:
    qualifier, value = dig(entry, "qualifiers", metric), fmt(entry.get(metric))
    return f"{qualifier} {value}" if qualifier and value != DASH else value


def load_packaged(name: str) -> dict:
    """A JSON file shipped with the package (``automl/anchors.json``, ``automl/targets.json``)."""
    return json.loads(resources.files("automl").joinpath(name).read_text("utf-8"))


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


def _head_id(head: Study | Run) -> str:
    return head.study_id if isinstance(head, Study) else head.run_id


def render_targets(runs: list[Run], studies: list[Study] = (), targets: dict | None = None) -> str:
    """Each target (``automl/targets.json``) beside the task's headline value (a study mean
    where there is a study), then the headline's KNN, t-SNE and wall-time targets."""
    targets = targets or load_packaged("targets.json")
    heads = headlines(runs, list(studies))
    rows = []
    for target in targets["test"]:
        task, metric, op, goal = (target[k] for k in ("task", "metric", "op", "goal"))
        statistic = target.get("statistic", "mean")
        head = heads.get(task)
        value = None if head is None else headline_value(head, metric, statistic)
        name = metric + (f" (study {statistic} over seeds)" if statistic != "mean"
                         else " (study mean)" if isinstance(head, Study) else "")
        rows.append(_target_row(task, name, f"{op} {fmt(goal)}", value,
                                source=_head_id(head) if head else None, met=_reached(value, op, goal)))
    knn, tsne = targets["knn_embedding"], targets["tsne_trustworthiness"]
    for task, head in heads.items():
        seeds = members(head)
        of = " (study mean)" if isinstance(head, Study) else ""
        # A study's KNN target: the seeds' mean KNN accuracy against their classifiers' mean.
        pairs = [(chosen["test"]["accuracy"], run.test["accuracy"]) for run in seeds
                 if run.test and (chosen := _selected_knn(run))]
        if pairs and len(pairs) == len(seeds):
            value = sum(k for k, _ in pairs) / len(pairs)
            goal = sum(c for _, c in pairs) / len(pairs) - knn["below_classifier"]
            rows.append(_target_row(task, f"KNN accuracy on its embedding{of}",
                                    f">= {fmt(goal)} (classifier − {knn['below_classifier']:g})",
                                    value, source=_head_id(head), met=_reached(value, ">=", goal)))
        trusts = [dig(run.tsne or {}, "features", "embedding", "trustworthiness", str(tsne["k"]))
                  for run in seeds]
        if trusts and None not in trusts:
            trust = sum(trusts) / len(trusts)
            rows.append(_target_row(task, f"t-SNE trustworthiness (k={tsne['k']}){of}",
                                    f">= {fmt(tsne['goal'])}", trust, source=_head_id(head),
                                    met=_reached(trust, ">=", tsne["goal"])))
        budget = number(dig(seeds[0].summary, "config", "time_budget_minutes"))
        minutes = [run.search_minutes for run in seeds]
        over = dig(targets, "wall_time", "over_budget")
        if budget and over is not None and None not in minutes:
            goal, longest = budget * (1 + over), max(minutes)
            rows.append(_target_row(task, "search wall minutes" + (" (slowest seed)" if of else ""),
                                    f"<= {fmt(goal, 1)} (budget + {over:.0%})",
                                    longest, source=_head_id(head),
                                    met=_reached(longest, "<=", goal), digits=1))
    return table(rows, "_No runs yet._")


def _selected_knn(run: Run) -> dict | None:
    """The KNN setting chosen on validation for the run's embedding, if it was scored on test."""
    chosen = [k for k in run.knn if k.get("selected") and k.get("features") == "embedding"]
    return chosen[0] if chosen and isinstance(chosen[0].get("test"), dict) else None


def _reached(value, op: str, goal: float) -> bool | None:
    if value is None:
        return None
    return value >= goal if op == ">=" else value <= goal


def _target_row(task: str, metric: str, target: str, value, *, source: str | None,
                met: bool | None, digits: int = 3) -> dict:
    return {"task": task, "metric": esc(metric), "target": target, "measured": fmt(value, digits),
            "reached": DASH if met is None else ("yes" if met else "**no**"),
            "run or study": esc(source) if source else DASH}


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
        rows.append({"task": task, "system": f"[{system}]({task}.md#{anchor(_head_id(head))})",
                     "test n": test_n, **values, "source": f"this project (commit {esc(commits)})"})
        rows += [{
            "task": esc(a["task"]), "system": esc(a["system"]), "test n": str(OFFICIAL_TEST_N),
            **{col: _anchor_value(a, key) for col, key in HEADLINE_METRICS},
            "source": esc("; ".join(x for x in (a.get("source"), a.get("notes")) if x)),
        } for a in anchors["anchors"] if a["task"] in ANCHOR_TASKS.get(task, (task,))]
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


def peer_tables(runs: list[Run], studies: list[Study] = ()) -> dict[str, list[dict]]:
    """For each task that has peer or ablation runs, the row of our search they are compared
    with (the headline, or our best study or run at the peers' time budget:
    :func:`automl.report.peer_section.comparator`) followed by theirs
    (:func:`automl.report.peer_section.peer_rows`, full precision): the README's and perf.md's table."""
    tables = {}
    for task, head in headlines(runs, list(studies)).items():
        beside = comparator(task, runs, head, list(studies))
        tables[task] = peer_rows(task, runs, beside, list(studies), headline=beside is head)
    return {task: rows for task, rows in tables.items() if len(rows) > 1}


def render_peers(runs: list[Run], studies: list[Study] = ()) -> str:
    """For each task that has them, our search at the peers' budget (the headline, or
    :func:`automl.report.peer_section.comparator`) beside the latest peer runs and our
    plain-validation ablation (:func:`automl.report.peer_section.companions`)."""
    parts = []
    for task, rows in peer_tables(runs, studies).items():
        parts += [f"**{task}**", render_peer_rows(rows, link=lambda i, t=task: f"{t}.md#{anchor(i)}")]
    if not parts:
        return "_No peer runs yet (`make bench-peers`)._"
    return "\n\n".join([*parts, (
        "Peers run once per campaign at the headline's image size and split, seed 0, and sit beside "
        "our best study (by validation) that had their time budget: the headline, unless the "
        "headline had another budget. Each peer row is "
        "the latest run of that system, never a pick among several by test. Budget: the time "
        "after which no new trial starts (the reference recipe has none: one fixed training "
        "run); search minutes: the whole search, as measured, the study's as its mean (and its "
        "slowest seed).")])


def render_environment(runs: list[Run]) -> str:
    """Environment and git commit of every source run."""
    def env(run: Run, key: str) -> str:
        return esc(dig(run.summary, "env", key) or DASH)

    return table([{
        "run": esc(r.run_id), "git commit": env(r, "git_commit"), "device": env(r, "device"),
        "python": env(r, "python"),
        "packages": esc(" ".join(f"{k}={v}" for k, v in (
            dig(r.summary, "env", "packages") or {}).items()) or DASH),
    } for r in runs], "_No runs._")


def render_readme(runs: list[Run], problems: list[tuple[Path, str]], out: Path, *,
                  runs_root: Path, pages: tuple[str, ...] = (), anchors: dict | None = None,
                  studies: list[Study] = ()) -> str:
    """The index page: links, headline vs published numbers, problems, environment.

    Args:
        runs: Loaded runs, as from :func:`load_runs`.
        problems: ``(folder, message)`` for run folders that could not be read.
        out: The report folder; every link is relative to it.
        runs_root: The folder that was searched (named relative to ``out``).
        pages: Other pages present in ``out`` to link, e.g. ``CAVEATS.md``, ``perf.md``.
        anchors: Published numbers; the packaged ``anchors.json`` by default.
        studies: Loaded studies, as from :func:`automl.records.runs.load_studies`.
    """
    anchors = anchors or load_anchors()
    index = [f"- [{t}]({t}.md): {sum(r.task == t for r in runs)} run(s)"
             + (f", {n} study(ies)" if (n := sum(st.task == t for st in studies)) else "")
             for t in dict.fromkeys(r.task for r in runs)]
    index += [f"- [{esc(p)}]({quote(p)})" for p in pages]
    where = f"`{esc(rel(runs_root, out))}`"
    found = (f"{len(runs)} run(s) found under {where}." if runs else
             f"No runs found under {where} (no folder there holds a summary.json).")
    parts = ["# cxr-automl results", f"Generated by `automl report` from run records. {found}"]
    if "CAVEATS.md" in pages:
        parts.append("**Read [CAVEATS.md](CAVEATS.md) before quoting any number.**")
    issues = [f"- {esc(rel(f, out))}: {esc(m)}" for f, m in problems]
    issues += [f"- {esc(r.run_id)}: {esc(p)}" for r in runs for p in r.problems]
    parts += ["## Pages", "\n".join(index) or "_No pages yet._",
              "## Headline: each task's study (or best run) vs published numbers",
              render_headline(runs, anchors, studies),
              "## Peers and ablation beside our search at their time budget, each with its wall time",
              render_peers(runs, studies),
              "## Targets", render_targets(runs, studies),
              *(["What was tried for each target, reached or not: [CAMPAIGN.md](CAMPAIGN.md)."]
                if "CAMPAIGN.md" in pages else []),
              "## Problems", "\n".join(issues) or "None.",
              "## Environment", render_environment(runs)]
    return "\n\n".join(parts) + "\n"


def write_report(runs: Path, out: Path) -> list[Path]:
    """Write ``README.md`` and one ``<task>.md`` per task found under ``runs`` into ``out``.

    Args:
        runs: Folder searched recursively for run folders (those holding ``summary.json``).
        out: Report folder, created if needed. ``CAVEATS.md``, ``CAMPAIGN.md`` and ``perf.md``
            there are linked, never touched; pages of tasks that no longer have runs are left as they are.

    Returns:
        The written files: README first, then the task pages.
    """
    runs, out = Path(runs), Path(out)
    if not runs.is_dir():
        raise FileNotFoundError(f"runs must be an existing folder of run records, got {runs}")
    out.mkdir(parents=True, exist_ok=True)
    found, problems = load_runs(runs)
    studies, study_problems = load_studies(runs, found)
    problems = sorted(problems + study_problems, key=lambda p: str(p[0]))
    anchors = load_anchors()
    pages = tuple(p for p in ("CAVEATS.md", "CAMPAIGN.md", "perf.md") if (out / p).exists())
    texts = {"README.md": render_readme(found, problems, out, runs_root=runs, pages=pages,
                                        anchors=anchors, studies=studies)}
    for task in dict.fromkeys(r.task for r in found):
        texts[f"{task}.md"] = render_task(task, [r for r in found if r.task == task], out,
                                          [st for st in studies if st.task == task], anchors)
    for name, text in texts.items():
        with open(out / name, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return [out / name for name in texts]
