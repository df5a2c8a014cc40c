"""Markdown report pages from run records: records in, Markdown out; the only place numbers are rounded."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from automl import __version__
from automl.records.runs import Run, Study, load_runs, load_studies, members
from automl.records.values import dig
from automl.report.configuration import budget_of, describe
from automl.report.headline import (
    Headline,
    headline_note,
    headlines,
    load_anchors,
    render_headline,
    task_anchors,
)
from automl.report.history import render_history
from automl.report.leaderboard import render_leaderboard, run_row
from automl.report.markdown import DASH, anchor, esc, rel, table
from automl.report.peer_section import companions, peer_rows, render_peer_rows
from automl.report.run_section import render_run
from automl.report.study_section import render_study, study_png_name, study_row
from automl.report.tables import expect_block, leaderboard_csv, leaderboard_rows, with_block
from automl.report.targets import render_targets

#: Hand-written pages in the report folder that the index links (never written here).
NOTES = ("CAVEATS.md", "CAMPAIGN.md", "AUDIT.md", "perf.md")


def shown_items(task: str, runs: list[Run], studies: list[Study], head: Headline | None,
                version: str = __version__) -> tuple[list[Study], list[Run]]:
    """What ``task``'s page renders in full: the headline, the studies and runs of the current
    version at the headline's budget, and the runs the headline is compared with (peers,
    ablation)."""
    same = _same_budget(head)
    shown_studies = [st for st in studies if st.task == task and (
        (st.version == version and st.runs and same(st.runs[0])) or (head is not None and st is head.item))]
    shown_runs = [r for st in shown_studies for r in st.runs]
    if head is not None and isinstance(head.item, Run):
        shown_runs.append(head.item)
    extra = [r for r in runs if r.task == task and r.version == version and same(r)]
    if head is not None:
        extra += companions(task, runs, head.item, studies)
    for run in extra:
        if all(run is not other for other in shown_runs):
            shown_runs.append(run)
    return shown_studies, shown_runs


def render_task(task: str, runs: list[Run], out: Path, studies: list[Study] = (),
                anchors: dict | None = None, *, head: Headline | None = None,
                version: str = __version__) -> str:
    """The ``<task>.md`` page: the headline, the leaderboard of the current version, the peers,
    then the sections of the headline study, of the current version's studies and of the runs
    they are made of or compared with. Older studies and runs are rows of ``history.md``."""
    anchors = anchors or load_anchors()
    studies = [st for st in studies if st.task == task]
    shown_studies, shown_runs = shown_items(task, runs, studies, head, version)
    # One version at the headline's budget: a search with more minutes is another contest.
    same = _same_budget(head)
    current_runs = [r for r in runs if r.task == task and r.version == version and same(r)]
    current_studies = [st for st in studies if st.version == version and st.runs and same(st.runs[0])]
    head_table = DASH if head is None else table(
        [study_row(head.item) if isinstance(head.item, Study) else run_row(head.item)], "")
    peers = peer_tables(runs, studies, {task: head} if head else {}).get(task)
    links = {r.run_id: f"#{anchor(r.run_id)}" for r in shown_runs}
    return "\n\n".join([
        f"# {esc(task)}", "[Back to the index](README.md) · [older studies and runs](history.md)",
        ("Test columns come from the test split, scored once per run after every choice was made "
         "on validation; a study's cells are the mean ± standard deviation over its seeds. `–` marks "
         "a missing value or a validation-only run."),
        "## Headline: the default configuration", headline_note(task, head, version), head_table,
        f"## Leaderboard of version {esc(version)}" + (f", budget {esc(head.budget)}" if head else ""),
        render_leaderboard(current_runs, current_studies, all_studies=studies,
                           empty=f"_No run or study of version {esc(version)} yet; older ones are rows of "
                                 "[history.md](history.md)._"),
        "## Peers beside the headline",
        render_peer_rows(peers, link=lambda i: f"#{anchor(i)}") if peers else "_No peer runs._",
        *(["## Studies", *[render_study(st, out, task_anchors(anchors, task), configuration=describe(st),
                                        links=links) for st in shown_studies]] if shown_studies else []),
        *(["## Runs", *[render_run(r, out) for r in sorted(shown_runs, key=lambda r: r.run_id)]]
          if shown_runs else []),
    ]) + "\n"


def _same_budget(head: Headline | None):
    """Whether a run had the headline's budget (any run, without a headline)."""
    if head is None or not members(head.item):
        return lambda run: True
    wanted = budget_of(dig(members(head.item)[0].summary, "config") or {})
    return lambda run: budget_of(dig(run.summary, "config") or {}) == wanted


def peer_tables(runs: list[Run], studies: list[Study] = (),
                heads: dict[str, Headline] | None = None) -> dict[str, list[dict]]:
    """For each task that has peer or ablation runs, its headline's row followed by theirs
    (:func:`automl.report.peer_section.peer_rows`, full precision, each with its ``run`` or
    ``study``): the README's, ``leaderboard.csv``'s and perf.md's table."""
    heads = headlines(runs, list(studies)) if heads is None else heads
    tables = {}
    for task, head in heads.items():
        rows = peer_rows(task, runs, head.item, list(studies), label=head.label)
        items = [head.item, *companions(task, runs, head.item, list(studies))]
        tables[task] = [{**row, "run": item} for row, item in zip(rows, items)]
    return {task: rows for task, rows in tables.items() if len(rows) > 1}


def render_peers(runs: list[Run], studies: list[Study] = (), heads: dict[str, Headline] | None = None) -> str:
    """For each task that has them, the headline beside the latest peer runs and our
    plain-validation ablation (:func:`automl.report.peer_section.companions`)."""
    parts = []
    for task, rows in peer_tables(runs, studies, heads).items():
        parts += [f"**{task}**", render_peer_rows(rows, link=lambda i, t=task: f"{t}.md#{anchor(i)}")]
    if not parts:
        return "_No peer runs yet (`make bench-peers`)._"
    return "\n\n".join([*parts, (
        "Peers run once at the headline's image size and split, seed 0, with the default budget. "
        "Each peer row is the latest run of that system, never a pick among several by test. "
        "Budget: the time after which no new trial starts (the reference recipe has none: one fixed "
        "training run); a row whose budget differs from the headline's is not the same contest. "
        "Search minutes: the whole search, as measured, a study's as its mean (and its slowest seed).")])


def render_environment(runs: list[Run]) -> str:
    """Environment and git commit of every source run."""
    def env(run: Run, key: str) -> str:
        return esc(dig(run.summary, "env", key) or DASH)

    return table([{
        "run": esc(r.run_id), "version": esc(r.version), "git commit": env(r, "git_commit"),
        "device": env(r, "device"), "python": env(r, "python"),
        "packages": esc(" ".join(f"{k}={v}" for k, v in (
            dig(r.summary, "env", "packages") or {}).items()) or DASH),
    } for r in runs], "_No runs._")


def render_readme(runs: list[Run], problems: list[tuple[Path, str]], out: Path, *,
                  runs_root: Path, pages: tuple[str, ...] = (), anchors: dict | None = None,
                  studies: list[Study] = (), heads: dict[str, Headline] | None = None) -> str:
    """The index page: the headline of each task beside the published numbers, the peers, the
    targets, links, problems and the environment of the runs shown.

    Args:
        runs: Loaded runs, as from :func:`load_runs`.
        problems: ``(folder, message)`` for run folders that could not be read.
        out: The report folder; every link is relative to it.
        runs_root: The folder that was searched (named relative to ``out``).
        pages: Other pages present in ``out`` to link, e.g. ``CAVEATS.md``, ``perf.md``.
        anchors: Published numbers; the packaged ``anchors.json`` by default.
        studies: Loaded studies, as from :func:`automl.records.runs.load_studies`.
        heads: Each task's headline (:func:`automl.report.headline.headlines` by default).
    """
    anchors = anchors or load_anchors()
    heads = headlines(runs, list(studies)) if heads is None else heads
    index = [f"- [{t}]({t}.md): the headline study, the version's leaderboard, the peers"
             for t in heads]
    index += ["- [history.md](history.md): one row per older study and run",
              "- [leaderboard.csv](leaderboard.csv): the tables below as CSV, full precision"] if runs else []
    index += [f"- [{esc(p)}]({quote(p)})" for p in pages]
    where = f"`{esc(rel(runs_root, out))}`"
    found = (f"{len(runs)} run(s) found under {where}; version {esc(__version__)}." if runs else
             f"No runs found under {where} (no folder there holds a summary.json).")
    parts = ["# cxr-automl results", f"Generated by `automl report` from run records. {found}"]
    if "CAVEATS.md" in pages:
        parts.append("**Read [CAVEATS.md](CAVEATS.md) before quoting any number.**")
    issues = [f"- {esc(rel(f, out))}: {esc(m)}" for f, m in problems]
    issues += [f"- {esc(r.run_id)}: {esc(p)}" for r in runs for p in r.problems]
    shown = [r for head in heads.values() for r in members(head.item)]
    shown += [row["run"] for rows in peer_tables(runs, studies, heads).values() for row in rows[1:]]
    parts += ["## What the default configuration gives, beside the published numbers",
              render_headline(runs, anchors, studies, heads=heads),
              "## Peers and ablation beside the headline, each with its budget and wall time",
              render_peers(runs, studies, heads),
              "## Targets, on the headline", render_targets(runs, studies, heads=heads),
              *(["What was tried for each target: [CAMPAIGN.md](CAMPAIGN.md)."]
                if "CAMPAIGN.md" in pages else []),
              "## Pages", "\n".join(index) or "_No pages yet._",
              "## Problems", "\n".join(issues) or "None.",
              "## Environment of the runs above", render_environment(shown)]
    return "\n\n".join(parts) + "\n"


def write_report(runs: Path, out: Path, *, readme: Path | None = None) -> list[Path]:
    """Write ``README.md``, one ``<task>.md`` per task, ``history.md`` and ``leaderboard.csv``
    from the records under ``runs`` into ``out``.

    Args:
        runs: Folder searched recursively for run folders (those holding ``summary.json``).
        out: Report folder, created if needed. ``CAVEATS.md``, ``CAMPAIGN.md``, ``AUDIT.md`` and
            ``perf.md`` there are linked, never touched; pages of tasks that no longer have runs
            are left as they are; study plots no page links any more are removed.
        readme: A README.md whose "What to expect" block
            (:func:`automl.report.tables.expect_block`) is rewritten, if given.

    Returns:
        The written files: README first, then the task pages, history and the CSV.
    """
    runs, out = Path(runs), Path(out)
    if not runs.is_dir():
        raise FileNotFoundError(f"runs must be an existing folder of run records, got {runs}")
    out.mkdir(parents=True, exist_ok=True)
    found, problems = load_runs(runs)
    studies, study_problems = load_studies(runs, found)
    problems = sorted(problems + study_problems, key=lambda p: str(p[0]))
    anchors = load_anchors()
    heads = headlines(found, studies)
    pages = tuple(p for p in NOTES if (out / p).exists())
    texts = {"README.md": render_readme(found, problems, out, runs_root=runs, pages=pages,
                                        anchors=anchors, studies=studies, heads=heads)}
    shown: set[str] = set()
    for task in dict.fromkeys(r.task for r in found):
        texts[f"{task}.md"] = render_task(task, found, out, studies, anchors, head=heads.get(task))
        task_studies, task_runs = shown_items(task, found, studies, heads.get(task))
        shown |= {st.study_id for st in task_studies} | {r.run_id for r in task_runs}
    if found:
        texts["history.md"] = render_history(found, studies, shown, out)
        texts["leaderboard.csv"] = leaderboard_csv(leaderboard_rows(heads, peer_tables(found, studies, heads),
                                                                    anchors))
    plotted = {study_png_name(st) for st in studies if st.study_id in shown}
    for stale in out.glob("study_*.png"):
        if stale.name not in plotted:
            stale.unlink()
    for name, text in texts.items():
        with open(out / name, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    written = [out / name for name in texts]
    if readme is not None:
        readme = Path(readme)
        text = with_block(readme.read_text(encoding="utf-8"), expect_block(heads, out, readme.parent))
        with open(readme, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        written.append(readme)
    return written
