"""Time to accuracy: what a finished search would have chosen, and scored on test, had it
stopped after 10, 20, 40 or 60 minutes.

For each cut before the run's end, the trials that had ended by then (minutes from the
run id's UTC time, so data loading counts; the run's end is its last trial's end) go
through the same scoring as the run itself (best by validation, ensemble and
threshold on the selection set, test once), in a folder of their own; the
run's trial checkpoints (``RUN/tuner``) must still be on disk. A run without them (a
committed record only) gives the validation side of the curve and its own final test.
"""

from __future__ import annotations

import argparse
import calendar
import dataclasses
import shutil
import time
from pathlib import Path

import keras
import keras_tuner as kt

from automl import records
from automl.data.pipeline import load_images
from automl.evaluation import scoring
from automl.records.trials import trial_image_size
from automl.search.orchestrator import prepare, selection_set
from automl.settings import choices
from automl.settings.run_config import SearchConfig
from automl.tasks.base import SearchSpace

CUTS = (10, 20, 40, 60)


def run_start(run_id: str) -> float:
    """Seconds since the epoch at which the run folder was made (its id's UTC stamp)."""
    stamp = "-".join(run_id.split("-")[-3:-1])
    return float(calendar.timegm(time.strptime(stamp, "%Y%m%d-%H%M%S")))


def trial_end(record: dict) -> float | None:
    if not record.get("started_at"):
        return None
    started = calendar.timegm(time.strptime(record["started_at"], "%Y-%m-%dT%H:%M:%SZ"))
    return started + float(record.get("seconds") or 0.0)


def trial_model(run_dir: Path, task, space: SearchSpace, record: dict) -> keras.Model:
    """A recorded trial's model rebuilt from its hyperparameters, with its best checkpoint."""
    hp = kt.HyperParameters()
    hp.values = dict(record["hparams"])
    size = trial_image_size(record, space.image_size)
    model = task.build(hp, dataclasses.replace(space, image_size=size))
    model.load_weights(run_dir / "tuner" / f"trial_{record['trial_id']}" / "checkpoint.weights.h5")
    return model


def cut_rows(run_dir: Path, cuts, out: Path) -> list[dict]:
    """One row per cut: trials ended, best validation objective, and (checkpoints present)
    the test metrics of what the run would have chosen then."""
    config = SearchConfig.load(run_dir)
    summary = records.read_json(run_dir / "summary.json")
    trials = records.read_jsonl(run_dir / "trials.jsonl")
    objective = summary["objective"]["name"]
    start = run_start(run_dir.name)
    has_checkpoints = (run_dir / "tuner").is_dir()
    context_parts = None
    rows = []
    ends = [end - start for t in trials if (end := trial_end(t)) is not None]
    wall = max(ends, default=0.0)  # seconds from the run folder's creation to its last trial's end
    for cut in cuts:
        if 60 * cut >= wall:
            break  # the run had ended by then: its own end (the last row) is that point
        done = [t for t in trials if (end := trial_end(t)) is not None and end - start <= 60 * cut]
        ranked = scoring.ranked_trials(done, objective, image_size=config.image_size)
        row = {"run_id": run_dir.name, "cut_minutes": cut, "trials_ended": len(done),
               "full_size_trials": len(ranked), "best_val_objective": ranked[0]["metrics"][objective]
               if ranked else None, "objective": objective, "test": None}
        if ranked and has_checkpoints:
            if context_parts is None:
                config, index, task, parts = prepare(config, log=lambda *a: None)
                val_images = load_images(parts["val"].path, config.image_size)
                selection = selection_set(config, task, val_images, parts["val"])
                space = SearchSpace(config.image_size, tuple(config.families), config.pretrained,
                                    config.seed, dict(config.fixed), objective)
                context_parts = (index, task, parts, selection, space)
            index, task, parts, selection, space = context_parts
            cut_dir = out / run_dir.name / f"cut-{cut:03d}"
            shutil.rmtree(cut_dir, ignore_errors=True)
            cut_dir.mkdir(parents=True)
            for name in ("config.json", "environment.json", "command.txt"):
                if (run_dir / name).exists():
                    shutil.copy(run_dir / name, cut_dir / name)
            for record in done:
                records.append_jsonl(cut_dir / "trials.jsonl", record)
            context = scoring.RunContext(
                run_dir=cut_dir, task=task, config=dataclasses.asdict(config), data_root=index.root,
                data_problems=[], parts=parts, selection=selection, objective=objective,
                load_model=lambda record, task=task, space=space: trial_model(run_dir, task, space, record),
                search_seconds=60.0 * cut, summary_extra={"cut_minutes": cut, "from_run": run_dir.name},
                log=lambda *a: None)
            scored = scoring.score_run(context)
            row["test"] = {k: scored["test"][k] for k in ("accuracy", "auc", "f1_macro")} | {
                "sens_spec_gap": scored["test"]["bias"]["sens_spec_gap"]}
            row["chosen"] = scored.get("ensemble", {}).get("trials") if scored.get("ensemble", {}).get(
                "used") else [scored["best_trial"]]
            keras.backend.clear_session()
        rows.append(row)
        print(f"{run_dir.name} at {cut:>3} min: {len(done)} trials ended, best {objective} "
              f"{row['best_val_objective']}, test {row['test']}", flush=True)
    final = summary.get("test") or {}
    rows.append({"run_id": run_dir.name, "cut_minutes": None, "final": True,
                 "search_minutes": wall / 60, "trials_ended": len(trials),
                 "best_val_objective": summary["objective"]["value"], "objective": objective,
                 "test": {k: final.get(k) for k in ("accuracy", "auc", "f1_macro")}
                 | {"sens_spec_gap": (final.get("bias") or {}).get("sens_spec_gap")}})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", required=True, help="finished run folders")
    parser.add_argument("--label", nargs="+", help="one label per run (e.g. old new); default the run id")
    parser.add_argument("--cuts", default=",".join(map(str, CUTS)), help="minutes, a,b,c")
    parser.add_argument("--scored", default="benchmarks/results/time_to_accuracy_runs",
                        help="where each cut's scoring is written")
    parser.add_argument("--out", default="benchmarks/results/time_to_accuracy.json")
    args = parser.parse_args(argv)
    cuts = [float(c) if "." in c else int(c) for c in args.cuts.split(",")]
    labels = args.label or [Path(r).name for r in args.run]
    out = Path(args.out)
    existing = records.read_json(out) if out.exists() else {"rows": []}
    rows = [r for r in existing["rows"] if r["run_id"] not in {Path(p).name for p in args.run}]
    for run, label in zip(args.run, labels):
        rows += [dict(r, label=label) for r in cut_rows(Path(run), cuts, Path(args.scored))]
    out.parent.mkdir(parents=True, exist_ok=True)
    records.write_json(out, {"rows": rows, "env": records.environment(),
                             "default_budget_minutes": choices.BUDGETS["real"]["time_budget_minutes"]})
    print(f"-> {out}")


if __name__ == "__main__":
    main()
