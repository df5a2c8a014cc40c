"""Where a search's minutes went: trial seconds by outcome, and the dead trials among them.

For each run, the recorded trials' seconds are summed by outcome: completed, pruned by
the median rule, pruned at chance (validation AUC at 0.5, ``automl.search.pruners.ChanceStopping``)
and failed; *dead* trials are those whose Keras validation AUC was exactly 0.5 at every
epoch they trained (one score for every image), whatever stopped them. Reads records
only (``trials.jsonl``, ``summary.json``); test scores play no part.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from automl import records

OUTCOMES = ("completed", "pruned (median)", "pruned (chance)", "failed")


def outcome(trial: dict) -> str:
    """One of OUTCOMES for a recorded trial."""
    status = trial.get("status")
    if status == "PRUNED":
        return "pruned (chance)" if (trial.get("pruned") or {}).get("rule") == "chance" else "pruned (median)"
    return "failed" if status == "FAILED" else "completed"


def is_dead(trial: dict) -> bool:
    """Every epoch's Keras validation AUC exactly 0.5: the model gave all images one score."""
    curve = (trial.get("history") or {}).get("val_auc") or []
    return bool(curve) and all(abs(v - 0.5) < 1e-9 for v in curve)


def run_minutes(run_dir: Path) -> dict:
    """Trials and minutes by outcome, dead trials, and the search's own minutes, for one run."""
    trials = records.read_jsonl(run_dir / "trials.jsonl")
    summary = records.read_json(run_dir / "summary.json")
    row = {"run_id": run_dir.name, "study": run_dir.parent.name if "-study-" in run_dir.parent.name else None,
           "seed": (summary.get("config") or {}).get("seed"),
           "search_minutes": (summary.get("search_seconds") or 0.0) / 60, "trials": len(trials)}
    for name in OUTCOMES:
        kept = [t for t in trials if outcome(t) == name]
        row[name] = {"trials": len(kept), "minutes": sum(t.get("seconds") or 0.0 for t in kept) / 60}
    dead = [t for t in trials if is_dead(t)]
    row["dead"] = {"trials": len(dead), "minutes": sum(t.get("seconds") or 0.0 for t in dead) / 60,
                   "full_size": sum(1 for t in dead if t.get("stage") == "full")}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", required=True, help="finished run folders")
    parser.add_argument("--out", default="benchmarks/results/trial_minutes.json")
    args = parser.parse_args()
    rows = [run_minutes(Path(run)) for run in args.run]
    records.write_json(Path(args.out), {"rows": rows, "env": records.environment()})
    for r in rows:
        parts = ", ".join(f"{name} {r[name]['trials']} ({r[name]['minutes']:.1f} min)" for name in OUTCOMES)
        print(f"{r['study'] or '-'} {r['run_id']} seed {r['seed']}: {r['trials']} trials in "
              f"{r['search_minutes']:.1f} min: {parts}; dead {r['dead']['trials']} "
              f"({r['dead']['minutes']:.1f} min, {r['dead']['full_size']} at full size)")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
