#!/usr/bin/env bash
# Run once on a Linux machine with an NVIDIA GPU: installs TensorFlow's CUDA build (never
# beside the CPU one), runs a 5-minute binary search and the training benchmark on the GPU,
# and prints the figures to paste into reports/perf.md (with the machine's name).
#   DATA=/path/to/chest_xray benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-${CXR_DATA_DIR:-}}"
[ -n "$DATA" ] || { echo "set DATA=/path/to/chest_xray" >&2; exit 2; }
OUT="${OUT:-runs/gpu_check}"
nvidia-smi -L
make setup GPU=1
echo "== TensorFlow distributions installed (must be exactly one):"
.venv/bin/pip list 2>/dev/null | grep -iE '^tensorflow(-cpu|-intel)? ' || true
.venv/bin/python - <<'PY'
import tensorflow as tf
print("TensorFlow", tf.__version__, "GPUs:", tf.config.list_physical_devices("GPU"))
PY
echo "== 5-minute binary search (mixed precision: float16 on the GPU)"
started=$(date +%s)
.venv/bin/automl search --task binary --data "$DATA" --out "$OUT" --time-budget 5 --precision mixed
echo "wall seconds: $(( $(date +%s) - started ))"
echo "== training throughput, old against new settings, on the GPU"
.venv/bin/python benchmarks/bench_training.py --compare --sizes 128 --steps 30 \
  --out benchmarks/results/bench_training_compare_gpu.json
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
runs = sorted(Path(sys.argv[1]).glob("binary-*/summary.json"))
s = json.loads(runs[-1].read_text())
t = s.get("test") or {}
print("| device | precision | search minutes | trials | test accuracy | test AUC |")
print("|---|---|---|---|---|---|")
print(f"| {s['env'].get('device')} | {s.get('precision_policy')} | {s['search_seconds'] / 60:.1f} | "
      f"{s.get('trials_completed')} + {s.get('trials_screened', 0)} screened | {t.get('accuracy', 0):.4f} | "
      f"{t.get('auc') or 0:.4f} |")
PY
