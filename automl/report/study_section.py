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


def render_study(study: Study, out: Path, anchors: list[dict]) -> str:
    """A study's section: facts, the metric table over seeds, and its plot (written into ``out``)."""
    seeds = ", ".join(str(s) for s in study.seeds)
    links = ", ".join(f"seed {seed}: [{esc(r.run_id)}](#{anchor(r.run_id)})"
                      for seed, r in zip(study.seeds, study.runs))
    commits = sorted({str(dig(r.summary, "env", "git_commit") or DASH) for r in study.runs})
    planned = dig(study.state, "seeds") or []
    facts = [
        f"{len(study.runs)} finished run(s) (seeds {seeds or DASH}) of {len(planned)} seed(s) planned; "
        f"every run is in the table, none left out",
        f"runs: {links or DASH}",
        f"mean validation objective: {fmt(study.score)} (what ranks this study; never test)",
        f"git commit(s): {esc(', '.join(commits)) or DASH}",
    ]
    command = study.runs[0].command if study.runs else None
    parts = [f"### {esc(study.study_id)}", "\n".join(f"- {f}" for f in facts)]
    if command:
        parts.append(f"Command (rerun it to resume or extend the study):\n\n```sh\n{command}\n```")
    rows = []
    for metric in STUDY_METRICS:
        stats = study.stats(metric)
        rows.append({"test metric": esc(LABELS[metric]), "mean ± sd": fmt_mean_sd(stats),
                     "min–max": DASH if not stats else f"{fmt(stats['min'])}–{fmt(stats['max'])}",
                     **{f"seed {seed}": fmt(v) for seed, v in zip(study.seeds, study.values(metric))}})
    parts.append(table(rows, "_No finished run yet._"))
    if study.runs:
        png = study_png_name(study)
        plots.study_png(study.seeds, {"accuracy": study.values("accuracy"), "AUC": study.values("auc")},
                        _anchor_lines(anchors), out / png, title=f"{study.study_id}: test, per seed")
        parts.append(f"![seeds of {esc(study.study_id)}]({rel(out / png, out)})")
    return "\n\n".join(parts)


def _anchor_lines(anchors: list[dict]) -> dict[str, list[tuple[str, float]]]:
    """Published numbers to draw as lines: metric -> [(system, value)]."""
    lines = {"accuracy": [], "AUC": []}
    for entry in anchors:
        for metric, key in (("accuracy", "accuracy"), ("AUC", "auc")):
            if number(entry.get(key)) is not None and "trivial" not in str(entry.get("notes", "")):
                lines[metric].append((str(entry["system"]), float(entry[key])))
    return lines


def study_row(study: Study, *, superseded: bool = False) -> dict:
    """The study's leaderboard row: mean ± sd of each test metric over its seeds (marked when
    a rerun of its configuration on newer code superseded it)."""
    minutes = [m for m in (r.search_minutes for r in study.runs) if m is not None]
    devices = sorted({str(dig(r.summary, "env", "device") or DASH) for r in study.runs})
    return {
        "run or study": f"[{esc(study.study_id)}](#{anchor(study.study_id)}) (study, "
                        f"{len(study.runs)} seeds{', superseded by newer code' if superseded else ''})",
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
