"""Search efficiency: best validation objective so far vs wall minutes, per tuner, at equal budget."""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from automl import records

TUNERS = ("hyperband", "bayesian", "random")
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def _epoch_seconds(stamp: str) -> float:
    """``started_at`` (UTC, ``%Y-%m-%dT%H:%M:%SZ``, whole seconds) as a POSIX time."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def best_so_far(trials: list[dict], objective: str) -> list[list[float]]:
    """``[[minutes, best objective so far], ...]``, one point per completed trial, in end order.

    Minutes count from the start of the first trial to each trial's end
    (``started_at + seconds``): what a user waiting on the search sees. Higher is
    better. Trials without a start time (the interrupted trial of a resumed run)
    or without the objective (failed ones) add no point but are not errors.
    """
    timed = [t for t in trials if t.get("started_at")]
    if not timed:
        return []
    zero = min(_epoch_seconds(t["started_at"]) for t in timed)
    ends = sorted(
        ((_epoch_seconds(t["started_at"]) + float(t.get("seconds") or 0.0) - zero) / 60,
         float(t["metrics"][objective]))
        for t in timed
        if t.get("status") == "COMPLETED" and objective in (t.get("metrics") or {})
    )
    curve: list[list[float]] = []
    best = float("-inf")
    for minutes, value in ends:
        best = max(best, value)
        curve.append([minutes, best])
    return curve


def best_at(curve: list[list[float]], minutes: float) -> float | None:
    """Best objective reached by ``minutes`` (None if no trial had finished by then)."""
    reached = [value for at, value in curve if at <= minutes + 1e-9]
    return reached[-1] if reached else None


def _objective(run_dir: Path, task_default: str = "val_auc") -> str:
    summary = run_dir / "summary.json"
    if summary.exists():
        name = (records.read_json(summary).get("objective") or {}).get("name")
        if name:
            return name
    config = run_dir / "config.json"
    if config.exists() and records.read_json(config).get("objective"):
        return records.read_json(config)["objective"]
    return task_default


def summarize_run(run_dir: Path | str, *, budget_minutes: float | None = None) -> dict:
    """One tuner's entry: run id, trial counts, the best-so-far curve and its value at
    25/50/75/100% of the wall budget (the run's ``time_budget_minutes`` unless given)."""
    run_dir = Path(run_dir)
    trials = records.read_jsonl(run_dir / "trials.jsonl")
    config = records.read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else {}
    if budget_minutes is None:
        budget_minutes = config.get("time_budget_minutes")
    objective = _objective(run_dir)
    curve = best_so_far(trials, objective)
    return {
        "tuner": config.get("tuner"),
        "run_id": run_dir.name,
        "objective": objective,
        "image_size": config.get("image_size"),
        "epochs": config.get("epochs"),
        "budget_minutes": budget_minutes,
        "trials": len(trials),
        "trials_completed": sum(t.get("status") == "COMPLETED" for t in trials),
        "trials_failed": sum(t.get("status") != "COMPLETED" for t in trials),
        "curve": curve,
        # A trial started before the budget ran out may end after it; those count in
        # "final" but not at 100% of the budget, which is where tuners are compared.
        "best_at_budget_fraction": ({str(f): best_at(curve, f * budget_minutes) for f in FRACTIONS}
                                    if budget_minutes else {}),
        "final_best": curve[-1][1] if curve else None,
    }


def plot(tuners: list[dict], path: Path | str) -> None:
    """One PNG: a best-so-far step curve per tuner, the budget as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for entry in tuners:
        if entry["curve"]:
            minutes, values = zip(*entry["curve"])
            ax.step(minutes, values, where="post", marker="o", markersize=3,
                    label=f"{entry['tuner'] or entry['run_id']} ({entry['trials_completed']} trials)")
    budgets = {e["budget_minutes"] for e in tuners if e.get("budget_minutes")}
    for budget in sorted(budgets):
        ax.axvline(budget, ls=":", color="grey")
    objective = tuners[0]["objective"] if tuners else "objective"
    ax.set_xlabel("wall minutes since the first trial started")
    ax.set_ylabel(f"best {objective} so far")
    ax.set_title("Search efficiency at equal wall budget")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def search(data: str | None, *, tuners=TUNERS, image_size: int = 64, epochs: int = 6,
           minutes: float = 8.0, max_trials: int = 100, out: str = "benchmarks/results/runs",
           seed: int = 0, smoke: bool = False) -> list[Path]:
    """One search per tuner, same data, seed and wall budget; returns the run folders."""
    from automl.search.orchestrator import run_search  # TensorFlow only when searching
    from automl.settings.run_config import SearchConfig

    folders = []
    for tuner in tuners:
        config = SearchConfig(task="binary", data=data, tuner=tuner, image_size=image_size, epochs=epochs,
                              max_trials=max_trials, time_budget_minutes=minutes, seed=seed, out=out,
                              smoke=smoke)
        folders.append(run_search(config))
    return folders


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("CXR_DATA_DIR"))
    parser.add_argument("--tuners", default=",".join(TUNERS))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--minutes", type=float, default=8.0, help="wall budget per tuner")
    parser.add_argument("--max-trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/runs", help="where the run folders go")
    parser.add_argument("--runs", help="existing run folders, comma-separated: recompute only, no search")
    parser.add_argument("--result", default="benchmarks/results/bench_tuners.json")
    parser.add_argument("--png", default="reports/search_efficiency.png")
    parser.add_argument("--smoke", action="store_true",
                        help="synthetic data, 2 trials per tuner, 1 epoch, 32 px; results in a temp folder")
    args = parser.parse_args(argv)
    if args.runs:
        folders = [Path(p.strip()) for p in args.runs.split(",") if p.strip()]
    elif args.smoke:
        tmp = Path(tempfile.mkdtemp(prefix="bench-tuners-smoke-"))
        args.result, args.png = str(tmp / "bench_tuners.json"), str(tmp / "search_efficiency.png")
        folders = search(None, tuners=args.tuners.split(","), out=str(tmp / "runs"), smoke=True,
                         image_size=32, epochs=1, minutes=1.0, max_trials=2, seed=args.seed)
    else:
        if not args.data:
            raise SystemExit("set DATA=... or CXR_DATA_DIR to the chest_xray folder (or use --runs/--smoke)")
        folders = search(args.data, tuners=args.tuners.split(","), image_size=args.image_size,
                         epochs=args.epochs, minutes=args.minutes, max_trials=args.max_trials,
                         out=args.out, seed=args.seed)
    tuners = [summarize_run(folder) for folder in folders]
    result = {"tuners": tuners, "env": records.environment()}
    Path(args.result).parent.mkdir(parents=True, exist_ok=True)
    records.write_json(Path(args.result), result)
    plot(tuners, args.png)
    for entry in tuners:
        final = entry["final_best"]
        print(f"{entry['tuner'] or '?':<10} {entry['trials']:>3} trials  final best {entry['objective']} "
              f"{'-' if final is None else f'{final:.4f}'}  ({entry['run_id']})")
    print(f"-> {args.result}, {args.png}")


if __name__ == "__main__":
    main()
