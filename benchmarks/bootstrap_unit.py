"""After the fact: a run's test intervals resampling images vs resampling patients. Reads scores.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from automl import records
from automl.evaluation import metrics
from automl.settings.labels import is_positive


def compare(run_dir: Path, *, n_resamples: int = 1000) -> dict:
    """95% intervals of the run's test metrics under its own decision rule, by resampling unit."""
    summary = records.read_json(run_dir / "summary.json")
    if not summary.get("test"):
        raise ValueError(f"{run_dir}: needs a run with a scored test split")
    test = records.read_scores(run_dir)["test"]
    names = summary["test"]["class_names"]
    if "score" in test:
        scores = test.score.to_numpy()
        y = is_positive(test.label)
    else:
        scores = test[[f"score_{k}" for k in range(len(names))]].to_numpy()
        y = test.subtype.map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
    kind = {"binary": "binary", "multiclass": "multiclass"}.get(summary["task"], "anomaly")
    rule = {"threshold": summary["threshold"], "weights": summary.get("prior_weights")}
    rows = {}
    for unit, groups in (("image", None), ("patient", test.patient.to_numpy())):
        result = metrics.evaluate(y, scores, kind=kind, class_names=names, groups=groups,
                                  n_resamples=n_resamples, seed=summary["config"]["seed"], **rule)
        rows[unit] = {m: {"value": result[m], "ci": ci, "width": None if ci is None else ci[1] - ci[0]}
                      for m, ci in result["ci"].items()}
    return {"run": run_dir.name, "n_images": int(len(test)), "n_patients": int(test.patient.nunique()),
            "n_resamples": n_resamples, "units": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", required=True, help="a finished run folder")
    parser.add_argument("--out", default="benchmarks/results/bootstrap_unit.json")
    args = parser.parse_args()
    result = compare(Path(args.run))
    records.write_json(Path(args.out), result)
    print(f"{result['run']}: {result['n_images']} test images from {result['n_patients']} patients")
    for unit, row in result["units"].items():
        print(f"  resampling {unit + 's':9s} " + "; ".join(
            f"{m} {r['value']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] width {r['width']:.3f}"
            for m, r in row.items() if r["ci"]))


if __name__ == "__main__":
    main()
