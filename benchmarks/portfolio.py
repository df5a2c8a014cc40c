"""Write the search's warm-start portfolio (``automl/search/portfolio.json``) from committed run records.

The rule, for each task: over the full-size trials that completed in the given runs (at
the default real-data image size, under the task's default objective), group trials by
configuration; keep the configurations whose full-size training (the default epochs) took
at most one ensemble member's share of the default budget; take the best ``--top`` by their
mean validation objective (each trial's best epoch, as early stopping keeps it). Reads
``trials.jsonl`` and ``summary.json`` only: test scores play no part.

    python benchmarks/portfolio.py --runs benchmarks/results/runs
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from automl import records
from automl.records.trials import config_key
from automl.search import promotion
from automl.settings import choices
from automl.tasks import get_task

TOP = 4


def member_minutes() -> float:
    """Minutes one ensemble member may take in the default real-data search (the promotion's
    allowance at the first full-size trial:
    :meth:`automl.search.promotion.SizePromotionMixin.member_allowance`)."""
    budget = choices.BUDGETS["real"]
    return (promotion.MEMBER_SLACK * (1 - promotion.SCREEN_SHARE) * budget["time_budget_minutes"]
            / budget["ensemble"])


def full_size_trials(run_dirs: list[Path], task: str, image_size: int, objective: str) -> list[dict]:
    """(configuration values, best objective, minutes for the default epochs, run id) of every
    completed full-size trial of ``task`` among ``run_dirs`` that ran under ``objective``."""
    epochs = choices.BUDGETS["real"]["epochs"]
    direction = choices.objective_direction(objective)
    found = []
    for run_dir in run_dirs:
        summary = records.read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else {}
        if summary.get("task") != task or (summary.get("objective") or {}).get("name") != objective:
            continue
        for trial in records.read_jsonl(run_dir / "trials.jsonl"):
            curve = (trial.get("history") or {}).get(objective) or []
            trained = len((trial.get("history") or {}).get("loss") or [])
            if trial.get("status") != "COMPLETED" or trial.get("image_size") != image_size or not curve:
                continue
            values = {k: v for k, v in (trial.get("hparams") or {}).items()
                      if not k.startswith("tuner/") and k != "image_size"}
            found.append({"values": values, "objective": max(curve) if direction == "max" else min(curve),
                          "minutes": float(trial["seconds"]) / trained * epochs / 60, "run": run_dir.name})
    return found


def choose(trials: list[dict], *, top: int, max_minutes: float, direction: str) -> list[dict]:
    """The ``top`` configurations by mean objective whose mean minutes fit ``max_minutes``."""
    groups: dict[str, list[dict]] = {}
    for trial in trials:
        groups.setdefault(config_key(trial["values"]), []).append(trial)
    rows = [{"values": group[0]["values"],
             "validation_mean": statistics.fmean(t["objective"] for t in group),
             "full_size_minutes": statistics.fmean(t["minutes"] for t in group),
             "trials": len(group), "runs": sorted({t["run"] for t in group})}
            for group in groups.values()]
    kept = [r for r in rows if r["full_size_minutes"] <= max_minutes]
    kept.sort(key=lambda r: r["validation_mean"], reverse=direction == "max")
    return kept[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True,
                        help="folder searched (recursively) for run folders")
    parser.add_argument("--tasks", nargs="+", default=["binary", "multiclass"])
    parser.add_argument("--top", type=int, default=TOP)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parents[1] / "automl" / "search" / "portfolio.json")
    args = parser.parse_args()
    run_dirs = sorted(p.parent for p in args.runs.rglob("trials.jsonl"))
    image_size = choices.BUDGETS["real"]["image_size"]
    limit = member_minutes()
    shipped = {"rule": (f"per task, the best {args.top} configurations by mean validation objective over "
                        f"the completed {image_size} px trials of committed runs, among those whose "
                        f"full-size training took at most {limit:.1f} minutes on 2 CPU cores"),
               "command": f"python benchmarks/portfolio.py --runs {args.runs}", "tasks": {}}
    for task in args.tasks:
        objective = get_task(task).default_objective(choices.DEFAULT_VALIDATION)
        trials = full_size_trials(run_dirs, task, image_size, objective)
        chosen = choose(trials, top=args.top, max_minutes=limit,
                        direction=choices.objective_direction(objective))
        if chosen:
            shipped["tasks"][task] = {"image_size": image_size, "objective": objective, "entries": chosen}
        print(f"{task}: {len(trials)} full-size trials in {len(run_dirs)} runs; chose {len(chosen)}")
        for row in chosen:
            print(f"  {row['validation_mean']:.4f} over {row['trials']} trial(s), "
                  f"{row['full_size_minutes']:.1f} min: {json.dumps(row['values'], sort_keys=True)}")
    args.out.write_text(json.dumps(shipped, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
