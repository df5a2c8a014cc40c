"""The targets table: each packaged target (``automl/report/targets.json``) beside the measured value."""

from __future__ import annotations

from automl.records.runs import Run, Study, members
from automl.records.values import dig, number
from automl.report.headline import CURRENT, Headline, head_id, headline_value, headlines, load_packaged
from automl.report.markdown import DASH, esc, fmt, table


def render_targets(runs: list[Run], studies: list[Study] = (), targets: dict | None = None, *,
                   heads: dict[str, Headline] | None = None) -> str:
    """Each target (``automl/report/targets.json``) beside the task's headline value (a study mean
    where there is a study), then the headline's KNN, t-SNE and wall-time targets. The headline
    is :func:`automl.report.headline.headlines`: what the default configuration gives; a
    stand-in of an older version or another configuration is named as such."""
    targets = targets or load_packaged("targets.json")
    heads = {task: _source(head) for task, head in
             (headlines(runs, list(studies)) if heads is None else heads).items()}
    rows = []
    for target in targets["test"]:
        task, metric, op, goal = (target[k] for k in ("task", "metric", "op", "goal"))
        statistic = target.get("statistic", "mean")
        head, source = heads.get(task, (None, None))
        value = None if head is None else headline_value(head, metric, statistic)
        name = metric + (f" (study {statistic} over seeds)" if statistic != "mean"
                         else " (study mean)" if isinstance(head, Study) else "")
        rows.append(_target_row(task, name, f"{op} {fmt(goal)}", value,
                                source=source, met=_reached(value, op, goal)))
    knn, tsne = targets["knn_embedding"], targets["tsne_trustworthiness"]
    for task, (head, source) in heads.items():
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
                                    value, source=source, met=_reached(value, ">=", goal)))
        trusts = [dig(run.tsne or {}, "features", "embedding", "trustworthiness", str(tsne["k"]))
                  for run in seeds]
        if trusts and None not in trusts:
            trust = sum(trusts) / len(trusts)
            rows.append(_target_row(task, f"t-SNE trustworthiness (k={tsne['k']}){of}",
                                    f">= {fmt(tsne['goal'])}", trust, source=source,
                                    met=_reached(trust, ">=", tsne["goal"])))
        budget = number(dig(seeds[0].summary, "config", "time_budget_minutes"))
        minutes = [run.search_minutes for run in seeds]
        over = dig(targets, "wall_time", "over_budget")
        if budget and over is not None and None not in minutes:
            goal, longest = budget * (1 + over), max(minutes)
            rows.append(_target_row(task, "search wall minutes" + (" (slowest seed)" if of else ""),
                                    f"<= {fmt(goal, 1)} (budget + {over:.0%})",
                                    longest, source=source,
                                    met=_reached(longest, "<=", goal), digits=1))
    return table(rows, "_No runs yet._")


def _source(head: Headline) -> tuple[Study | Run, str]:
    """The headline's study or run, and how the table names it: its id, with its version and
    kind unless it is the default configuration on the current version."""
    if head.kind == CURRENT:
        return head.item, head_id(head.item)
    return head.item, f"{head_id(head.item)} ({head.kind}: {head.version})"


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
