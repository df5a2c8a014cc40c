"""Resident memory across consecutive tiny trials: does a long search leak?"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

from automl import records
from automl.data.synthetic import write_synthetic
from automl.search.orchestrator import run_search
from automl.search.recording import RecordingMixin
from automl.settings.run_config import SearchConfig

SIZE_PINNED = {"family": "plain", "blocks": 2, "base_filters": 16, "kernel_size": 3,
               "batch_norm": True, "embedding_width": 64, "batch_size": 32}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/bench_memory.json")
    parser.add_argument("--vary-size", action="store_true",
                        help="let model size vary too (then RSS also tracks the largest model so far)")
    args = parser.parse_args()
    samples: list[float] = []
    original = RecordingMixin.on_trial_end

    def sampling(self, trial):
        original(self, trial)
        samples.append(rss_mb())

    RecordingMixin.on_trial_end = sampling
    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic(Path(tmp) / "data", per_class=24, size=48)
        # Model size is pinned and only learning rate, dropout, augmentation etc. vary:
        # a growing high-water mark from ever larger models is not a leak.
        fixed = {"blocks": 2} if args.vary_size else SIZE_PINNED
        run_search(SearchConfig(data=str(data), tuner="random", max_trials=args.trials, epochs=1,
                                image_size=32, out=str(Path(tmp) / "runs"), fixed=fixed, ensemble=1),
                   log=lambda *a: None)
    # Trial 1 pays one-off costs (graph tracing, kernels); growth is measured after it.
    growth = (samples[-1] - samples[0]) / samples[0]
    result = {"trials": len(samples), "model_size": "varied" if args.vary_size else "pinned",
              "rss_mb_after_each_trial": samples,
              "rss_growth_after_first_trial": growth, "env": records.environment()}
    records.write_json(Path(args.out), result)
    print("RSS after each trial (MB): " + ", ".join(f"{s:.0f}" for s in samples))
    print(f"growth from trial 1 to trial {len(samples)}: {100 * growth:+.1f}% (goal: at most +15%)")


if __name__ == "__main__":
    main()
