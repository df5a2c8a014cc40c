"""Markdown report pages from run records: records in, Markdown out; the only place numbers are rounded."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from automl.records.runs import Run, Study, load_runs, load_studies
from automl.records.values import dig
from automl.report.headline import headlines, load_anchors, render_headline, task_anchors
from automl.report.leaderboard import render_leaderboard
from automl.report.markdown import DASH, anchor, esc, rel, table
from automl.report.peer_section import comparator, peer_rows, render_peer_rows
from automl.report.run_section import render_run
from automl.report.study_section import render_study
from automl.report.targets import render_targets


def render_task(task: str, runs: list[Run], out: Path, studies: list[Study] = (),
                anchors: dict | None = None) -> str:
    """The ``<task>.md`` page: leaderboard, then one section per study and per run (by id)."""
    names = sorted({esc(dig(r.summary, "objective", "name")) for r in runs})
    mixed = f" Runs use different objectives ({', '.join(names)})." if len(names) > 1 else ""
    if len(names) > 1 and len({r.validation for r in runs}) > 1:
        mixed += (" Shift-validation runs (`val_shift_*`, the default) rank first, then the "
                  "others, each kind by its own value.")
    anchors = anchors or load_anchors()
    study_text = (f" {len(studies)} study(ies) first: their cells are the mean ± standard deviation "
                  "over seeds (not an interval), ranked by mean validation objective; each "
                  "study's section gives min–max and every seed.") if studies else ""
    return "\n\n".join([
        f"# {esc(task)}", "[Back to the index](README.md)",
        (f"{len(runs)} run(s), ranked by validation objective (never by test).{study_text} Test "
         "columns come from the test split, scored once after selection; `–` marks a missing "
         f"value or a validation-only run.{mixed}"),
        "## Leaderboard", render_leaderboard(runs, studies),
        *(["## Studies", *[render_study(st, out, task_anchors(anchors, task))
                           for st in sorted(studies, key=lambda st: st.study_id)]] if studies else []),
        "## Runs", *[render_run(r, out) for r in sorted(runs, key=lambda r: r.run_id)],
    ]) + "\n"


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
