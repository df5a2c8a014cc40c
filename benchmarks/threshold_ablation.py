"""After the fact: the test score a binary run would have had with its threshold chosen on clean
validation instead of the pooled shift-validation set. Reads scores.csv; chooses nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from automl import records
from automl.evaluation import decisions, metrics
from automl.records.summary import chosen_out_of_fold


def ablate(run_dir: Path) -> dict:
    """Test metrics under the run's own threshold and under the same rule on clean validation."""
    summary, split, y = records.binary_scores(run_dir)
    rule = summary["config"].get("threshold", "balanced")
    thresholds = {
        "as run (" + summary["config"].get("validation", "plain") + " validation)": summary["threshold"],
        "clean " + ("out-of-fold scores" if chosen_out_of_fold(summary) else "validation"):
            decisions.choose_threshold(y["val"], split["val"].score, rule=rule),
    }
    rows = []
    for name, threshold in thresholds.items():
        result = metrics.evaluate(y["test"], split["test"].score.to_numpy(), kind="binary",
                                  threshold=threshold, class_names=["NORMAL", "PNEUMONIA"],
                                  n_resamples=0)
        rows.append({"threshold_from": name, "threshold": float(threshold),
                     "test_accuracy": result["accuracy"], "test_sensitivity": result["sensitivity"],
                     "test_specificity": result["specificity"],
                     "test_sens_spec_gap": result["bias"]["sens_spec_gap"]})
    return {"run": run_dir.name, "rule": rule, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", required=True, help="a finished binary run folder")
    parser.add_argument("--out", default="benchmarks/results/threshold_ablation.json")
    args = parser.parse_args()
    result = ablate(Path(args.run))
    records.write_json(Path(args.out), result)
    for row in result["rows"]:
        print(f"{row['threshold_from']:32s} t={row['threshold']:.4f} test accuracy "
              f"{row['test_accuracy']:.4f} sens {row['test_sensitivity']:.4f} "
              f"spec {row['test_specificity']:.4f}")


if __name__ == "__main__":
    main()
