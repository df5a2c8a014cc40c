"""A study's rows and section in the report: mean ± sd, min–max and every seed, with a plot."""

from __future__ import annotations

import re
from pathlib import Path

from automl.records.runs import STUDY_METRICS, Study
from automl.records.values import dig, number
from automl.report import plots
from automl.report.markdown import DASH, anchor, esc, fmt, rel, table

LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "f1_macro": "macro-F1",
          "auc": "AUC", "sensitivity": "sensitivity", "specificity": "specificity",
          "sens_spec_gap": "|sens − spec|", "ece": "ECE"}


def fmt_mean_sd(stats: dict | None) -> str:
    """``0.912 ± 0.010``; ``0.912 ± –`` for one seed (no spread to show); the dash when no
    seed has the value."""
    if not stats:
        return DASH
    return f"{fmt(stats['mean'])} ± {fmt(stats['sd']) if stats['n'] > 1 else DASH}"


def study_png_name(study: Study) -> str:
    return f"study_{re.sub(r'[^A-Za-z0-9_.-]', '_', study.study_id)}.png"


def render_study(study: Study, out: Path, anchors: list[dict], *, configuration: str = "",
                 links: dict[str, str] | None = None) -> str:
    """A study's section: facts, the metric table over seeds, and its plot (written into ``out``).

    Args:
        anchors: The published rows drawn beside the seeds (only those of the study's own task:
            another question's figure is never drawn as if comparable).
        configuration: How the study's configuration reads (``default`` or its differences).
        links: run id -> link target of that seed's section, where the page has one.
    """
    links = links or {}
    seeds = ", ".join(str(s) for s in study.seeds)
    runs = ", ".join(f"seed {seed}: [{esc(r.run_id)}]({links[r.run_id]})" if r.run_id in links
                     else f"seed {seed}: {esc(r.run_id)}" for seed, r in zip(study.seeds, study.runs))
    cards = ", ".join(f"[seed {seed}]({rel(r.folder / 'MODEL_CARD.md', out)})"
                      for seed, r in zip(study.seeds, study.runs) if (r.folder / "MODEL_CARD.md").is_file())
    commits = sorted({str(dig(r.summary, "env", "git_commit") or DASH) for r in study.runs})
    planned = dig(study.state, "seeds") or []
    facts = [
        f"version {esc(study.version)}, code digest {esc(study.state.get('code') or DASH)}, git commit(s) "
        f"{esc(', '.join(commits)) or DASH}; configuration: {esc(configuration or DASH)}",
        f"{len(study.runs)} finished run(s) (seeds {seeds or DASH}) of {len(planned)} seed(s) planned; "
        f"every run is in the table, none left out",
        f"runs: {runs or DASH}",
        *([f"model cards: {cards}"] if cards else []),
        f"mean validation objective: {fmt(study.score)} (what ranks studies of one version; never test)",
    ]
    command = study.runs[0].command if study.runs else None
    parts = [f"### {esc(study.study_id)}", "\n".join(f"- {f}" for f in facts)]
    if command:
        parts.append("Command it ran. Run again with the same code it resumes this study; with any other "
                     "code it starts a new one. Give it `--out runs` to keep your own results apart from "
                     f"the committed records:\n\n```sh\n{command}\n```")
    rows = []
    for metric in STUDY_METRICS:
        stats = study.stats(metric)
        rows.append({"test metric": esc(LABELS[metric]), "mean ± sd": fmt_mean_sd(stats),
                     "min–max": DASH if not stats else f"{fmt(stats['min'])}–{fmt(stats['max'])}",
                     **{f"seed {seed}": fmt(v) for seed, v in zip(study.seeds, study.values(metric))}})
    parts.append(table(rows, "_No finished run yet._"))
    if study.runs:
        png = study_png_name(study)
        plots.study_png(study_panels(study, anchors), out / png,
                        title=f"{study.study_id} (version {study.version}): test split, 95% intervals")
        parts.append(f"![seeds of {esc(study.study_id)} beside the published figures]"
                     f"({rel(out / png, out)})")
        parts.append("Intervals: a seed's is its patient bootstrap (95%), the mean's ± one standard "
                     "deviation over seeds, a published accuracy's the Wilson 95% interval on the 624 test "
                     "images (no interval is known for a published AUC). Only figures of this task's own "
                     "question are "
                     "drawn; trivial floors are left out.")
    return "\n\n".join(parts)


#: Published figures are on the official test split of this many images.
_TEST_N = 624


def study_panels(study: Study, anchors: list[dict]) -> dict[str, list[tuple]]:
    """The rows of :func:`automl.report.plots.study_png`: each seed with its bootstrap interval,
    the seeds' mean with ± sd, then each published figure of the same task (trivial floors
    left out) with the Wilson 95% interval of an accuracy on the 624 test images (no interval
    is known for a published AUC)."""
    panels = {}
    for metric, key in (("accuracy", "accuracy"), ("AUC", "auc")):
        rows = []
        for seed, run in zip(study.seeds, study.runs):
            interval = dig(run.test, "ci", key)
            rows.append((f"seed {seed}", "seed", number(dig(run.test, key)),
                         tuple(interval) if isinstance(interval, list) and len(interval) == 2 else None))
        stats = study.stats(key)
        rows.append((f"mean of {stats['n'] if stats else 0} seeds (± sd)", "mean",
                     stats["mean"] if stats else None,
                     (stats["mean"] - stats["sd"], stats["mean"] + stats["sd"]) if stats and stats["n"] > 1
                     else None))
        for entry in anchors:
            if entry.get("task") != study.task or "trivial" in str(entry.get("notes", "")):
                continue
            value = number(entry.get(key))
            exact = value is not None and not dig(entry, "qualifiers", key)
            # One label for both panels: approximate where the source gives any figure as ≈.
            approximate = " (approx.)" if "≈" in (entry.get("qualifiers") or {}).values() else ""
            rows.append((_short(str(entry["system"])) + approximate, "published", value,
                         _wilson(value, _TEST_N) if exact and key == "accuracy" else None))
        panels[metric] = rows
    return panels


def _short(name: str, limit: int = 50) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _wilson(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` of ``n`` (95% by default)."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return centre - half, centre + half


def study_row(study: Study) -> dict:
    """The study's leaderboard row: mean ± sd of each test metric over its seeds."""
    minutes = [m for m in (r.search_minutes for r in study.runs) if m is not None]
    devices = sorted({str(dig(r.summary, "env", "device") or DASH) for r in study.runs})
    return {
        "run or study": f"[{esc(study.study_id)}](#{anchor(study.study_id)}) (study, "
                        f"{len(study.runs)} seeds)",
        "val objective": f"{esc(dig(study.runs[0].summary, 'objective', 'name') or DASH)} "
                         f"{fmt(study.score)} (mean)" if study.runs else DASH,
        "test accuracy [95% CI]": fmt_mean_sd(study.stats("accuracy")),
        "AUC": fmt_mean_sd(study.stats("auc")),
        "macro-F1": fmt_mean_sd(study.stats("f1_macro")),
        "sens": fmt_mean_sd(study.stats("sensitivity")),
        "spec": fmt_mean_sd(study.stats("specificity")),
        "gap": fmt_mean_sd(study.stats("sens_spec_gap")),
        "ECE": fmt_mean_sd(study.stats("ece")),
        "minutes": fmt(sum(minutes) / len(minutes), 1) if minutes else DASH,
        "device": esc("; ".join(devices)),
    }
