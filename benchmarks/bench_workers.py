"""Wall time of the same tiny distributed search with 1 worker and with 2 workers."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from automl import records
from automl.data.synthetic import write_synthetic


def timed_search(data: Path, out: Path, workers: int, trials: int) -> dict:
    command = [sys.executable, "-m", "automl.cli", "search", "--data", str(data), "--tuner", "random",
               "--max-trials", str(trials), "--epochs", "2", "--image-size", "32", "--fix", "blocks=2",
               "--ensemble", "1", "--out", str(out), "--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    run_dir = next(out.glob("binary-*"))
    lines = records.read_jsonl(run_dir / "trials.jsonl")
    return {"workers": workers, "trials": len(lines), "wall_seconds": seconds,
            "trial_seconds_sum": sum(t["seconds"] for t in lines),
            "workers_seen": sorted({t["worker"] for t in lines})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/bench_workers.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic(Path(tmp) / "data", per_class=24, size=48)
        rows = [timed_search(data, Path(tmp) / f"w{n}", n, args.trials) for n in (1, 2)]
    records.write_json(Path(args.out), {"rows": rows, "env": records.environment()})
    for row in rows:
        print(f"{row['workers']} worker(s): {row['trials']} trials in {row['wall_seconds']:.1f} s "
              f"(sum of trial times {row['trial_seconds_sum']:.1f} s)")


if __name__ == "__main__":
    main()
