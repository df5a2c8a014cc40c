"""Markdown reports from run records: records in, Markdown out; the only place numbers are rounded."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import pandas as pd

DASH = "–"
SKIP_DIRS = {"tuner", "tb"}
TASK_ORDER = ("binary", "multiclass", "autoencoder")
# Published numbers shown beside a task's best run; bacterial-vs-viral is context for 3-class.
ANCHOR_TASKS = {"multiclass": ("multiclass", "subtype")}
HEADLINE_METRICS = (("accuracy", "accuracy"), ("AUC", "auc"), ("sensitivity", "sensitivity"),
                    ("specificity", "specificity"), ("macro-F1", "f1_macro"))
KEY_HPARAMS = ("family", "blocks", "base_filters", "learning_rate", "augment", "balancing",
               "batch_size")
FEATURE_ORDER = ("embedding", "pixels", "pca50")
PLOTS = (("confusion_matrix.png", "confusion matrix"), ("roc.png", "ROC"),
         ("training_curves.png", "training curves"), ("score_histogram.png", "score histogram"),
         ("reconstructions.png", "reconstructions"))
OFFICIAL_TEST_N = 624
_TASK_NAME = re.compile(r"^[a-z0-9_-]+$")  # becomes a file name: <task>.md


@dataclass
class Run:
    """One run folder: its summary plus the optional side files, read but not interpreted."""

    folder: Path
    summary: dict
    trials: list[dict] = field(default_factory=list)
    knn: list[dict] = field(default_factory=list)
    tsne: dict | None = None
    command: str | None = None
    pngs: tuple[str, ...] = ()  # names of the PNG files present in the folder
    problems: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.summary["task"]

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.folder.name)

    @property
    def test(self) -> dict | None:
        return self.summary["test"] if isinstance(self.summary.get("test"), dict) else None

    @property
    def score(self) -> float | None:
        """Validation objective, negated for ``direction: min`` so that higher is better."""
        value = _number(dig(self.summary, "objective", "value"))
        if value is None:
            return None
        return -value if dig(self.summary, "objective", "direction") == "min" else value


def dig(obj, *keys):
    """``obj[k1][k2]...``, or None where a level is missing or not a dict."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _number(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return None
    return float(x)


def esc(value) -> str:
    """Text from a file made safe for one table cell: no bare ``|``, newline, backtick or tag."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return " ".join(text.replace("<", "&lt;").replace(">", "&gt;").split())


def fmt(x, digits: int = 3, *, signed: bool = False) -> str:
    """A number rounded for display; ``–`` when missing or not a number."""
    value = _number(x)
    if value is None:
        return DASH
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_ci(value, interval) -> str:
    """``0.912 [0.889, 0.934]``; just the value when the interval is missing."""
    if isinstance(interval, list) and len(interval) == 2 and DASH not in map(fmt, interval):
        return f"{fmt(value)} [{fmt(interval[0])}, {fmt(interval[1])}]"
    return fmt(value)


def fmt_count(x) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else DASH


def short_text(text, limit: int = 120, *, last_line: bool = True) -> str:
    """Escaped one-line snippet: the last non-empty line (a traceback's exception) or all lines,
    cut to ``limit`` characters."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    text = (lines[-1:] if last_line else lines) or [""]
    text = " ".join(text)
    return esc(text if len(text) <= limit else text[: limit - 1] + "…")


def render_hparams(hparams, image_size=None) -> str:
    """Compact ``k=v`` string of the telling hyperparameters (all but ``tuner/*`` if none of
    :data:`KEY_HPARAMS` is present), learning rate and other floats to 3 significant digits."""
    hparams = hparams if isinstance(hparams, dict) else {}
    keys = [k for k in KEY_HPARAMS if k in hparams]
    keys = keys or [k for k in hparams if not str(k).startswith("tuner/")]
    parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in ((k, hparams[k]) for k in keys)]
    if image_size is not None:
        parts.append(f"image_size={image_size}")
    return esc(" ".join(parts))


def table(rows: list[dict], empty: str) -> str:
    """A GitHub table of formatted, escaped strings (tabulate must not re-parse numbers)."""
    if not rows:
        return empty
    frame = pd.DataFrame(rows, columns=list(rows[0])).fillna(DASH)
    return frame.to_markdown(index=False, tablefmt="github", disable_numparse=True)


def anchor(text: str) -> str:
    """GitHub's anchor for a heading ``text``."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def rel(path: Path, out: Path) -> str:
    """``path`` relative to the report folder, URL-quoted, with forward slashes."""
    return quote(Path(os.path.relpath(path.resolve(), out.resolve())).as_posix(), safe="/")


def gap(metrics) -> str:
    """|sensitivity - specificity| of a split's metrics, from its bias block or the two rates."""
    value = dig(metrics, "bias", "sens_spec_gap")
    sens, spec = _number(dig(metrics, "sensitivity")), _number(dig(metrics, "specificity"))
    if value is None and sens is not None and spec is not None:
        value = abs(sens - spec)
    return fmt(value)


def _read_jsonl(path: Path, problems: list[str]) -> list[dict]:
    """Records of a JSON-lines file; unreadable lines are counted into ``problems``."""
    if not path.exists():
        return []
    rows, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        rows += [row] if isinstance(row, dict) else []
        bad += not isinstance(row, dict) and bool(line.strip())
    if bad:
        problems.append(f"{path.name}: {bad} unreadable line(s) skipped")
    return rows


def load_run(folder: Path) -> Run:
    """Read one run folder; raises ValueError when its summary.json is unusable."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"summary.json unreadable: {error}") from error
    if not isinstance(summary, dict) or not _TASK_NAME.match(str(summary.get("task", ""))):
        raise ValueError("summary.json is not an object with a task name like 'binary'")
    run = Run(folder, summary, pngs=tuple(sorted(p.name for p in folder.glob("*.png"))))
    run.trials = _read_jsonl(folder / "trials.jsonl", run.problems)
    run.knn = _read_jsonl(folder / "knn.jsonl", run.problems)
    if (folder / "tsne.json").exists():
        try:
            run.tsne = json.loads((folder / "tsne.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            run.problems.append(f"tsne.json unreadable: {error}")
    if (folder / "command.txt").exists():
        run.command = (folder / "command.txt").read_text(encoding="utf-8", errors="replace").strip()
    return run


def load_runs(runs: Path) -> tuple[list[Run], list[tuple[Path, str]]]:
    """Run folders under ``runs`` (any depth, skipping ``tuner``/``tb``), sorted by task then
    run id, and ``(folder, message)`` for each folder whose summary could not be used."""
    found, problems = [], []
    for root, dirs, files in os.walk(runs):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        if "summary.json" in files:
            try:
                found.append(load_run(Path(root)))
            except ValueError as error:
                problems.append((Path(root), str(error)))
    order = {t: i for i, t in enumerate(TASK_ORDER)}
    found.sort(key=lambda r: (order.get(r.task, len(order)), r.task, r.run_id, str(r.folder)))
    return found, sorted(problems, key=lambda p: str(p[0]))


def ranked(runs: list[Run]) -> list[Run]:
    """Runs by validation objective, best first (never by test); runs without one last.

    Objectives of different kinds are not comparable numbers: a pooled shift-validation
    AUC is lower than a clean-validation AUC of the same model. Runs selected under
    shift validation (the default design, ``val_shift_*``) therefore rank ahead of
    the others, and the objective value orders runs within each kind.
    """
    def kind(run: Run) -> int:
        return 0 if str(dig(run.summary, "objective", "name") or "").startswith("val_shift_") else 1

    return sorted(runs, key=lambda r: (r.score is None, kind(r), -(r.score or 0.0), r.run_id))


def load_anchors() -> dict:
    """The published numbers shipped with the package (``automl/anchors.json``)."""
    return json.loads(resources.files("automl").joinpath("anchors.json").read_text("utf-8"))


def render_leaderboard(runs: list[Run]) -> str:
    """One row per run of a task, ranked by validation objective; test columns ``–`` if none."""
    rows = []
    for rank, run in enumerate(ranked(runs), 1):
        s, test = run.summary, run.test
        best = next((t for t in run.trials if str(t.get("trial_id")) == str(s.get("best_trial"))),
                    {})
        seconds = _number(s.get("search_seconds"))
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


def _trial_order(trial: dict) -> tuple:
    tid = str(trial.get("trial_id"))
    return (not tid.isdigit(), int(tid) if tid.isdigit() else 0, tid)


def render_trials(run: Run) -> str:
    """Trial-level table: every recorded trial, failed ones with the exception line."""
    name, best = dig(run.summary, "objective", "name"), run.summary.get("best_trial")
    rows = [{
        "trial": esc(t.get("trial_id")) + (" (best)" if str(t.get("trial_id")) == str(best) else ""),
        "worker": esc(t.get("worker", DASH)),
        "status": esc(t.get("status", DASH)),
        esc(name): fmt(dig(t, "metrics", name)),
        "seconds": fmt(t.get("seconds"), 1),
        "params": fmt_count(t.get("params")),
        "hyperparameters": render_hparams(t.get("hparams")),
        "error": short_text(t.get("error")) or DASH,
    } for t in sorted(run.trials, key=_trial_order)]
    return table(rows, "_No trial records (trials.jsonl missing)._")


def _feature_order(name) -> tuple:
    return (FEATURE_ORDER.index(name) if name in FEATURE_ORDER else len(FEATURE_ORDER), str(name))


def render_knn(rows: list[dict]) -> str:
    """The KNN setting chosen on validation for each feature set, with its test scores."""
    picked = sorted((r for r in rows if r.get("selected") is True), key=lambda r: (
        _feature_order(r.get("features")), str(r.get("k")), str(r.get("metric"))))
    return table([{
        "features": esc(r.get("features")), "k": esc(r.get("k")), "metric": esc(r.get("metric")),
        "val accuracy": fmt(dig(r, "val", "accuracy")),
        "test accuracy": fmt(dig(r, "test", "accuracy")),
        "test balanced acc": fmt(dig(r, "test", "balanced_accuracy")),
        "test macro-F1": fmt(dig(r, "test", "f1_macro")),
        "test sens": fmt(dig(r, "test", "sensitivity")),
        "test spec": fmt(dig(r, "test", "specificity")),
        "test gap": gap(r.get("test")),
    } for r in picked], "_No selected KNN rows._")


def render_tsne(run: Run, out: Path) -> str:
    """Trustworthiness of each t-SNE map (higher is better), then the maps whose PNG exists."""
    features = dig(run.tsne, "features")
    features = features if isinstance(features, dict) else {}
    names = sorted(features, key=_feature_order)
    text = table([{
        "features": esc(f), "n": esc(dig(features, f, "n") or DASH),
        "trustworthiness@5": fmt(dig(features, f, "trustworthiness", "5")),
        "trustworthiness@10": fmt(dig(features, f, "trustworthiness", "10")),
        "seconds": fmt(dig(features, f, "seconds"), 1),
    } for f in names], "_No t-SNE maps._")
    images = [f"![t-SNE {esc(f)}]({rel(run.folder / png, out)})" for f in names
              if (png := dig(features, f, "png")) in run.pngs]
    return "\n\n".join([text, *images])


def render_run(run: Run, out: Path) -> str:
    """Per-run section: facts, command, per-class table, trials, KNN, t-SNE and plots."""
    s = run.summary
    split, metrics = ("test", run.test) if run.test else ("validation", s.get("val"))
    counts, problems = dig(s, "data", "counts"), dig(s, "data", "problems")
    counts = ", ".join(f"{esc(k)} {esc(v)}" for k, v in counts.items()) if isinstance(
        counts, dict) else DASH
    facts = [
        (f"data: {esc(Path(str(dig(s, 'config', 'data') or DASH)).name)} ({counts}); "
         f"{len(problems) if isinstance(problems, list) else 0} data problem(s)"),
        (f"objective: {esc(dig(s, 'objective', 'name'))} = {fmt(dig(s, 'objective', 'value'))} "
         f"({esc(dig(s, 'objective', 'direction'))}), best trial {esc(s.get('best_trial'))}"),
        f"git commit {esc(dig(s, 'env', 'git_commit'))} on {esc(dig(s, 'env', 'device'))}",
    ]
    if _number(s.get("threshold")) is not None:
        facts.append(f"decision threshold (chosen on validation): {fmt(s['threshold'])}")
    if not run.test:
        facts.append("**validation only**: no test split was scored; figures below are validation")
    if _number(dig(metrics, "auc_pneumonia")) is not None:
        facts.append(f"{split} AUC pneumonia vs normal: {fmt(metrics['auc_pneumonia'])}")
    if isinstance(detection := dig(metrics, "subtype_detection"), dict):
        facts.append(f"{split} detection rate by subtype: "
                     + ", ".join(f"{esc(k)} {fmt(v)}" for k, v in detection.items()))
    parts = [f"### {esc(run.run_id)}", "\n".join(f"- {f}" for f in facts)]
    parts += ["\n".join(f"- note: {esc(p)}" for p in run.problems)] if run.problems else []
    if run.command:
        # A fence longer than any backtick run inside shows the command verbatim.
        fence = "`" * max(3, 1 + max(map(len, re.findall(r"`+", run.command)), default=0))
        parts.append(f"Command:\n\n{fence}sh\n{run.command}\n{fence}")
    per_class = dig(metrics, "per_class")
    if isinstance(per_class, dict) and per_class:
        parts += [f"#### Per class ({split})", table([{
            "class": esc(c), "precision": fmt(dig(m, "precision")), "recall": fmt(dig(m, "recall")),
            "f1": fmt(dig(m, "f1")), "support": esc(dig(m, "support"))}
            for c, m in per_class.items()], "")]
    parts += ["#### Trials", render_trials(run)]
    if run.knn:
        parts += ["#### KNN on features (setting chosen on validation)", render_knn(run.knn)]
    if run.tsne is not None:
        parts += [f"#### t-SNE ({esc(dig(run.tsne, 'method') or DASH)})", render_tsne(run, out)]
    plots = [f"![{title}]({rel(run.folder / name, out)})" for name, title in PLOTS
             if name in run.pngs]
    parts += ["#### Plots", "\n\n".join(plots)] if plots else []
    return "\n\n".join(parts)


def render_task(task: str, runs: list[Run], out: Path) -> str:
    """The ``<task>.md`` page: leaderboard, then one section per run (by run id)."""
    names = sorted({esc(dig(r.summary, "objective", "name")) for r in runs})
    mixed = f" Runs use different objectives ({', '.join(names)})." if len(names) > 1 else ""
    if len(names) > 1 and any(n.startswith("val_shift_") for n in names):
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


def ours(runs: list[Run]) -> list[Run]:
    """Runs of this toolkit (not the peer systems benchmarked beside it)."""
    return [r for r in runs if not r.summary.get("peer")]


# The project's targets on the official test split (selection on validation only).
TARGETS = (
    ("binary", "accuracy", ">=", 0.92), ("binary", "auc", ">=", 0.96),
    ("binary", "sens_spec_gap", "<=", 0.08),
    ("multiclass", "accuracy", ">=", 0.85), ("multiclass", "f1_macro", ">=", 0.82),
    ("autoencoder", "auc", ">=", 0.85), ("autoencoder", "accuracy", ">=", 0.80),
)


def render_targets(runs: list[Run]) -> str:
    """Each target beside the measured value of the task's best run (chosen on validation)."""
    rows = []
    best = {t: ranked([r for r in ours(runs) if r.task == t])[0]
            for t in dict.fromkeys(r.task for r in ours(runs))}
    for task, metric, op, goal in TARGETS:
        run = best.get(task)
        value = None
        if run is not None and run.test:
            value = dig(run.test, "bias", metric) if metric == "sens_spec_gap" else dig(run.test, metric)
        rows.append(_target_row(task, metric, op, goal, value, run))
    for task, run in best.items():
        chosen = [k for k in run.knn if k.get("selected") and k.get("features") == "embedding"]
        if chosen and chosen[0].get("test") and run.test:
            goal = run.test["accuracy"] - 0.02
            rows.append(_target_row(task, "KNN accuracy on its embedding", ">=", goal,
                                    chosen[0]["test"]["accuracy"], run, goal_text="classifier − 0.02"))
        trust = dig(run.tsne or {}, "features", "embedding", "trustworthiness", "5")
        if trust is not None:
            rows.append(_target_row(task, "t-SNE trustworthiness (k=5)", ">=", 0.93, trust, run))
    return table(rows, "_No runs yet._")


def _target_row(task, metric, op, goal, value, run, goal_text=None) -> dict:
    met = None if value is None else (value >= goal if op == ">=" else value <= goal)
    return {"task": task, "metric": esc(metric), "target": f"{op} {goal_text or fmt(goal)}",
            "measured": fmt(value), "reached": DASH if met is None else ("yes" if met else "**no**"),
            "run": esc(run.run_id) if run else DASH}


def render_headline(runs: list[Run], anchors: dict) -> str:
    """Best run of each task (by validation objective) beside that task's published numbers."""
    rows = []
    runs = ours(runs)
    for task in dict.fromkeys(r.task for r in runs):
        best = ranked([r for r in runs if r.task == task])[0]
        commit = str(dig(best.summary, "env", "git_commit") or DASH)[:12]
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
