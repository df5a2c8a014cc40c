"""Markdown report pages from run records: records in, Markdown out; the only place numbers are rounded."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from automl.markdown import (
    DASH,
    anchor,
    dig,
    esc,
    fmt,
    fmt_ci,
    fmt_count,
    number,
    rel,
    short_text,
    table,
)
from automl.report_run import gap, render_hparams, render_run
from automl.runs import Run, load_runs, ours, ranked

# Published numbers shown beside a task's best run; bacterial-vs-viral is context for 3-class.
ANCHOR_TASKS = {"multiclass": ("multiclass", "subtype")}
HEADLINE_METRICS = (("accuracy", "accuracy"), ("AUC", "auc"), ("sensitivity", "sensitivity"),
                    ("specificity", "specificity"), ("macro-F1", "f1_macro"))
OFFICIAL_TEST_N = 624


def load_anchors() -> dict:
    """The published numbers shipped with the package (``automl/anchors.json``)."""
    return load_packaged("anchors.json")


def render_leaderboard(runs: list[Run]) -> str:
    """One row per run of a task, ranked by validation objective; test columns ``–`` if none."""
    rows = []
    for rank, run in enumerate(ranked(runs), 1):
        s, test = run.summary, run.test
        best = next((t for t in run.trials if str(t.get("trial_id")) == str(s.get("best_trial"))),
                    {})
        seconds = number(s.get("search_seconds"))
        rows.append({
            "rank": str(rank) if run.score is not None else DASH,
            "run": f"[{esc(run.run_id)}](#{anchor(run.run_id)})"
                   + ("" if test else " (validation only)"),
            "data": esc(Path(str(dig(s, "config", "data") or DASH)).name),
            "tuner": esc(dig(s, "config", "tuner") or DASH),
            "trials ok/failed": f"{fmt_count(s.get('trials_completed'))}/"
                                f"{fmt_count(s.get('trials_failed'))}",
            "search min": DASH if seconds is None else fmt(seconds / 60, 2),
            "best hyperparameters": render_hparams(s.get("best_hparams"),
                                                   dig(s, "config", "image_size")),
            "val objective": f"{esc(dig(s, 'objective', 'name'))}="
                             f"{fmt(dig(s, 'objective', 'value'))}",
            "test accuracy [95% CI]": fmt_ci(dig(test, "accuracy"), dig(test, "ci", "accuracy")),
            "balanced acc": fmt(dig(test, "balanced_accuracy")),
            "macro-F1": fmt(dig(test, "f1_macro")),
            "AUC": fmt(dig(test, "auc")),
            "sens": fmt(dig(test, "sensitivity")),
            "spec": fmt(dig(test, "specificity")),
            "sens-spec gap": gap(test),
            "recall spread": fmt(dig(test, "bias", "recall_spread")),
            "pos-rate skew": fmt(dig(test, "bias", "positive_rate_skew"), signed=True),
            "ECE": fmt(dig(test, "ece")),
            "params": fmt_count(best.get("params")),
            "command": short_text(run.command, 160, last_line=False) or DASH,
        })
    return table(rows, "_No runs for this task._")


def render_task(task: str, runs: list[Run], out: Path) -> str:
    """The ``<task>.md`` page: leaderboard, then one section per run (by run id)."""
    names = sorted({esc(dig(r.summary, "objective", "name")) for r in runs})
    mixed = f" Runs use different objectives ({', '.join(names)})." if len(names) > 1 else ""
    if len(names) > 1 and len({r.validation for r in runs}) > 1:
        mixed += (" Shift-validation runs (`val_shift_*`, the default) rank first, then the "
                  "others, each kind by its own value.")
    return "\n\n".join([
        f"# {esc(task)}", "[Back to the index](README.md)",
        (f"{len(runs)} run(s), ranked by validation objective (never by test). Test columns come "
         "from the test split, scored once after selection; `–` marks a missing value or a "
         f"validation-only run.{mixed}"),
        "## Leaderboard", render_leaderboard(runs), "## Runs",
        *[render_run(r, out) for r in sorted(runs, key=lambda r: r.run_id)],
    ]) + "\n"


def _anchor_value(entry: dict, metric: str) -> str:
    qualifier, value = dig(entry, "qualifiers", metric), fmt(entry.get(metric))
    return f"{qualifier} {value}" if qualifier and value != DASH else value


def load_packaged(name: str) -> dict:
    """A JSON file shipped with the package (``automl/anchors.json``, ``automl/targets.json``)."""
    return json.loads(resources.files("automl").joinpath(name).read_text("utf-8"))


def render_targets(runs: list[Run], targets: dict | None = None) -> str:
    """Each target (``automl/targets.json``) beside the measured value of the task's best
    run (chosen on validation)."""
    targets = targets or load_packaged("targets.json")
    rows = []
    best = {t: ranked([r for r in ours(runs) if r.task == t])[0]
            for t in dict.fromkeys(r.task for r in ours(runs))}
    for target in targets["test"]:
        task, metric, op, goal = (target[k] for k in ("task", "metric", "op", "goal"))
        run = best.get(task)
        value = None
        if run is not None and run.test:
            value = dig(run.test, "bias", metric) if metric == "sens_spec_gap" else dig(run.test, metric)
        rows.append(_target_row(task, metric, f"{op} {fmt(goal)}", value, run=run,
                                met=_reached(value, op, goal)))
    knn, tsne = targets["knn_embedding"], targets["tsne_trustworthiness"]
    for task, run in best.items():
        chosen = [k for k in run.knn if k.get("selected") and k.get("features") == "embedding"]
        if chosen and chosen[0].get("test") and run.test:
            goal = run.test["accuracy"] - knn["below_classifier"]
            value = chosen[0]["test"]["accuracy"]
            rows.append(_target_row(task, "KNN accuracy on its embedding",
                                    f">= classifier − {knn['below_classifier']:g}", value, run=run,
                                    met=_reached(value, ">=", goal)))
        trust = dig(run.tsne or {}, "features", "embedding", "trustworthiness", str(tsne["k"]))
        if trust is not None:
            rows.append(_target_row(task, f"t-SNE trustworthiness (k={tsne['k']})",
                                    f">= {fmt(tsne['goal'])}", trust, run=run,
                                    met=_reached(trust, ">=", tsne["goal"])))
    return table(rows, "_No runs yet._")


def _reached(value, op: str, goal: float) -> bool | None:
    if value is None:
        return None
    return value >= goal if op == ">=" else value <= goal


def _target_row(task: str, metric: str, target: str, value, *, run: Run | None, met: bool | None) -> dict:
    return {"task": task, "metric": esc(metric), "target": target, "measured": fmt(value),
            "reached": DASH if met is None else ("yes" if met else "**no**"),
            "run": esc(run.run_id) if run else DASH}


def render_headline(runs: list[Run], anchors: dict) -> str:
    """Best run of each task (by validation objective) beside that task's published numbers."""
    rows = []
    runs = ours(runs)
    for task in dict.fromkeys(r.task for r in runs):
        best = ranked([r for r in runs if r.task == task])[0]
        # The whole mark: a cut would drop the "-dirty" that says the code was not committed.
        commit = str(dig(best.summary, "env", "git_commit") or DASH)
        rows.append({
            "task": task,
            "system": f"[cxr-automl {task} ({esc(best.run_id)})]({task}.md#{anchor(best.run_id)})",
            "test n": esc(best.test["n"]) if best.test else "validation only",
            **{col: fmt(dig(best.test, key)) for col, key in HEADLINE_METRICS},
            "source": f"this project (commit {esc(commit)})"})
        rows += [{
            "task": esc(a["task"]), "system": esc(a["system"]), "test n": str(OFFICIAL_TEST_N),
            **{col: _anchor_value(a, key) for col, key in HEADLINE_METRICS},
            "source": esc("; ".join(x for x in (a.get("source"), a.get("notes")) if x)),
        } for a in anchors["anchors"] if a["task"] in ANCHOR_TASKS.get(task, (task,))]
    if not rows:
        return "_No runs yet: nothing to compare._"
    return "\n\n".join([table(rows, ""), (
        f"Published numbers: {esc(anchors['test_split'])}. {esc(anchors['caveat'])} Our rows: the "
        "best run of the task by validation objective, its test split scored once; a test n other "
        f"than {OFFICIAL_TEST_N} means other data, not comparable with the published rows. "
        "≈ approximate, > lower bound only.")])


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
                  runs_root: Path, pages: tuple[str, ...] = (), anchors: dict | None = None) -> str:
    """The index page: links, headline vs published numbers, problems, environment.

    Args:
        runs: Loaded runs, as from :func:`load_runs`.
        problems: ``(folder, message)`` for run folders that could not be read.
        out: The report folder; every link is relative to it.
        runs_root: The folder that was searched (named relative to ``out``).
        pages: Other pages present in ``out`` to link, e.g. ``CAVEATS.md``, ``perf.md``.
        anchors: Published numbers; the packaged ``anchors.json`` by default.
    """
    anchors = anchors or load_anchors()
    index = [f"- [{t}]({t}.md): {sum(r.task == t for r in runs)} run(s)"
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
              "## Headline: best run per task vs published numbers", render_headline(runs, anchors),
              "## Targets", render_targets(runs),
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
    pages = tuple(p for p in ("CAVEATS.md", "CAMPAIGN.md", "perf.md") if (out / p).exists())
    texts = {"README.md": render_readme(found, problems, out, runs_root=runs, pages=pages)}
    for task in dict.fromkeys(r.task for r in found):
        texts[f"{task}.md"] = render_task(task, [r for r in found if r.task == task], out)
    for name, text in texts.items():
        with open(out / name, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return [out / name for name in texts]
