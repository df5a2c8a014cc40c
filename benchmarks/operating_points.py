"""After the fact: does an operating point chosen on validation hold on the shifted test split?

For each binary run, thresholds under several rules (``balanced``, ``sens:0.95``,
``sens:0.90``, ``spec:0.90``) are chosen on the run's clean selection scores in
``scores.csv`` (validation, or a refit's out-of-fold scores) and applied to its test
scores. Reads records only; chooses nothing: the rules are the user's to pick, and the
runs' own thresholds (chosen on the pooled shift-validation set) are untouched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from automl import records
from automl.evaluation import decisions, metrics

RULES = ("balanced", "sens:0.95", "sens:0.90", "spec:0.90")


def operating_points(run_dir: Path, rules=RULES) -> list[dict]:
    """One row per rule: the threshold chosen on the clean selection scores, the sensitivity
    and specificity it has there, and what it gives on test."""
    _, split, y = records.binary_scores(run_dir)
    rows = []
    for rule in rules:
        threshold = decisions.choose_threshold(y["val"], split["val"].score.to_numpy(), rule=rule)
        row = {"run": run_dir.name, "rule": rule, "threshold": float(threshold)}
        for name in ("val", "test"):
            result = metrics.evaluate(y[name], split[name].score.to_numpy(), kind="binary",
                                      threshold=threshold, class_names=["NORMAL", "PNEUMONIA"],
                                      n_resamples=0)
            row |= {f"{name}_{key}": result[key] for key in ("sensitivity", "specificity", "accuracy")}
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", required=True, help="finished binary run folders")
    parser.add_argument("--out", default="benchmarks/results/operating_points.json")
    args = parser.parse_args()
    rows = [row for run in args.run for row in operating_points(Path(run))]
    records.write_json(Path(args.out), {"rules": list(RULES), "rows": rows, "env": records.environment()})
    print("| run | rule | threshold | validation sens / spec | test sens / spec | test accuracy |")
    print("|---|---|---:|---|---|---:|")
    for r in rows:
        print(f"| `{r['run']}` | `{r['rule']}` | {r['threshold']:.3f} | {r['val_sensitivity']:.3f} / "
              f"{r['val_specificity']:.3f} | {r['test_sensitivity']:.3f} / {r['test_specificity']:.3f} | "
              f"{r['test_accuracy']:.3f} |")
    for rule in RULES:
        kept = [r for r in rows if r["rule"] == rule]
        sens, spec = ([r[f"test_{k}"] for r in kept] for k in ("sensitivity", "specificity"))
        print(f"{rule}: test sensitivity {min(sens):.3f}-{max(sens):.3f}, specificity "
              f"{min(spec):.3f}-{max(spec):.3f}, accuracy mean "
              f"{np.mean([r['test_accuracy'] for r in kept]):.3f} over {len(kept)} runs")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
