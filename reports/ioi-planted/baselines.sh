#!/usr/bin/env bash
# SAEs on ioi-planted (the hand-set circuit), scored and ranked, at two nodes:
#   nm-in:  blocks.1.hook_resid_post@END, what the name movers read (S and Pos, from the
#           S-inhibition heads; IO is not there yet);
#   nm-out: blocks.2.hook_resid_post@END, after the name movers (IO written; S and Pos still
#           present but read by nothing downstream).
# Deterministic (seed 0); resumable (--skip-completed keeps finished evaluations).
#   bash reports/ioi-planted/baselines.sh [OUT_DIR]   (default: reports/ioi-planted)
set -euo pipefail
out=${1:-reports/ioi-planted}
mkdir -p "$out/saes" "$out/runs"
for where in "nm-in blocks.1.hook_resid_post@END" "nm-out blocks.2.hook_resid_post@END"; do
  read -r label node <<< "$where"
  saes=()
  while read -r name arch sparsity; do
    sae="$out/saes/${label}-${name}.safetensors"
    [ -f "$sae" ] || sae-bench train-sae --model ioi-planted --arch "$arch" $sparsity \
      --node "$node" --data task --d-sae 512 --steps 1000 --seed 0 --out "$sae" --quiet
    saes+=(--sae "$sae")
  done <<'LIST'
relu-l1_1 relu --l1 1
gated-l1_1 gated --l1 1
gated-l1_8 gated --l1 8
topk-k4 topk --k 4
batchtopk-k4 batchtopk --k 4
LIST
  sae-bench run "${saes[@]}" --task ioi --model ioi-planted --seed 0 --quiet --skip-completed \
    --out "$out/runs" > /dev/null
done
rm -rf "$out/leaderboard.new"
sae-bench leaderboard "$out"/runs/*/results.json --out "$out/leaderboard.new" --quiet
rm -rf "$out/leaderboard" && mv "$out/leaderboard.new" "$out/leaderboard"
