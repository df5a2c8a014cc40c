#!/usr/bin/env bash
# The real-data campaign: every task's 3-seed study at the default budget, the embeddings
# benchmark of each classifier run, the peers at the same wall budget, then the reports.
#
#   DATA=../shared/data/chest_xray benchmarks/campaign.sh      (or: make campaign DATA=...)
#
# One step at a time and nothing else beside it (2 cores: a second process corrupts both
# timings). Rerun to continue: a finished step is skipped (its marker is in
# benchmarks/results/campaign_steps/), an interrupted study resumes its unfinished seed.
# About 4 hours on 2 CPU cores: 9 searches of ~20 minutes, 3 peers, reports.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-${CXR_DATA_DIR:-}}
[ -n "$DATA" ] || { echo "campaign: set DATA (or CXR_DATA_DIR) to the chest_xray folder" >&2; exit 2; }
OUT=${OUT:-benchmarks/results/runs}
SEEDS=${SEEDS:-0 1 2}
BIN=${BIN:-.venv/bin}
DONE=${DONE:-benchmarks/results/campaign_steps}
mkdir -p "$DONE"
# The default search's wall budget: the peers and the ablation get the same minutes.
BUDGET=$("$BIN/python" -c "from automl.settings import choices; print(choices.BUDGETS['real']['time_budget_minutes'])")
EPOCHS=$("$BIN/python" -c "from automl.settings import choices; print(choices.BUDGETS['real']['epochs'])")
SIZE=$("$BIN/python" -c "from automl.settings import choices; print(choices.BUDGETS['real']['image_size'])")

step() {
  local name=$1
  shift
  if [ -f "$DONE/$name" ]; then
    echo "campaign: $name already done ($(cat "$DONE/$name"))"
    return
  fi
  echo "campaign: $name: $*"
  "$@"
  date -u +%FT%TZ > "$DONE/$name"
}

embed_study() {  # KNN and t-SNE for every run of the task's latest study that has none yet
  local state
  state=$(ls -t "$OUT/$1"-study-*/study.json | head -1)
  for run in "$(dirname "$state")"/*/; do
    if [ -f "$run/summary.json" ] && [ ! -f "$run/knn.jsonl" ]; then
      "$BIN/automl" embed --run "$run"
    fi
  done
}

for task in binary multiclass autoencoder; do
  # shellcheck disable=SC2086  # SEEDS is a list
  step "study-$task" "$BIN/automl" study --task "$task" --seeds $SEEDS --data "$DATA" --out "$OUT"
done
for task in binary multiclass; do
  step "embed-$task" embed_study "$task"
done
step plain-validation "$BIN/automl" search --task binary --seed 0 --validation plain --data "$DATA" --out "$OUT"
peer_autokeras() {  # the default search's wall minutes; max_trials only a cap
  "$BIN/python" -c "import autokeras" 2>/dev/null || "$BIN/pip" install -q -e '.[peers]'
  "$BIN/python" benchmarks/bench_peers.py --which autokeras --data "$DATA" --out "$OUT" \
    --image-size "$SIZE" --epochs "$EPOCHS" --max-trials 100 --time-budget "$BUDGET" --seed 0
}

step peer-autokeras peer_autokeras
step peer-reference "$BIN/python" benchmarks/bench_peers.py --which reference --data "$DATA" --out "$OUT" \
  --image-size "$SIZE" --epochs "$EPOCHS" --max-trials 1 --seed 0
${MAKE:-make} report OUT="$OUT"
${MAKE:-make} perf
echo "campaign: done; reports/README.md and reports/perf.md are regenerated"
