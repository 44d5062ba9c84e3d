#!/usr/bin/env bash
# Five SAEs per node on one model, scored and ranked (ioi-planted's and ioi-circuit's
# leaderboards). Deterministic (seed 0); resumable (--skip-completed keeps finished evaluations).
#   bash reports/node_baselines.sh MODEL OUT_DIR LABEL=NODE [LABEL=NODE ...]
set -euo pipefail
model=$1 out=$2
shift 2
mkdir -p "$out/saes" "$out/runs"
for where in "$@"; do
  label=${where%%=*} node=${where#*=}
  saes=()
  while read -r name arch sparsity; do
    sae="$out/saes/${label}-${name}.safetensors"
    [ -f "$sae" ] || sae-bench train-sae --model "$model" --arch "$arch" $sparsity \
      --node "$node" --data task --d-sae 512 --steps 1000 --seed 0 --out "$sae" --quiet
    saes+=(--sae "$sae")
  done <<'LIST'
relu-l1_1 relu --l1 1
gated-l1_1 gated --l1 1
gated-l1_8 gated --l1 8
topk-k4 topk --k 4
batchtopk-k4 batchtopk --k 4
LIST
  sae-bench run "${saes[@]}" --task ioi --model "$model" --seed 0 --quiet --skip-completed \
    --out "$out/runs" > /dev/null
done
rm -rf "$out/leaderboard.new"
sae-bench leaderboard "$out"/runs/*/results.json --out "$out/leaderboard.new" --quiet
rm -rf "$out/leaderboard" && mv "$out/leaderboard.new" "$out/leaderboard"
