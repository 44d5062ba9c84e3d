#!/usr/bin/env bash
# Rebuild the shipped reference SAEs for ioi-tiny's main cross-section, score them, and write the
# leaderboard. Deterministic (seed 0); resumable (--skip-completed keeps finished evaluations).
#   bash reports/ioi-tiny/baselines.sh [OUT_DIR]   (default: reports/ioi-tiny)
set -euo pipefail
out=${1:-reports/ioi-tiny}
node="blocks.0.hook_resid_post@END"
mkdir -p "$out/saes" "$out/runs"
saes=()
while read -r name arch sparsity; do
  for data in task text; do
    sae="$out/saes/${name}-${data}.safetensors"
    [ -f "$sae" ] || sae-bench train-sae --arch "$arch" $sparsity --node "$node" --data "$data" \
      --d-sae 512 --steps 1000 --seed 0 --out "$sae" --quiet
    saes+=(--sae "$sae")
  done
done <<'LIST'
relu-l1_0.3 relu --l1 0.3
relu-l1_3 relu --l1 3
gated-l1_1 gated --l1 1
gated-l1_8 gated --l1 8
topk-k4 topk --k 4
topk-k16 topk --k 16
batchtopk-k4 batchtopk --k 4
batchtopk-k16 batchtopk --k 16
LIST
# One run scores all of them against a shared clean run, counterfactuals and dictionaries;
# each lands in $out/runs/<SAE name>/ exactly as a run of that SAE alone would write it.
sae-bench run "${saes[@]}" --task ioi --model ioi-tiny --seed 0 --quiet --skip-completed \
  --out "$out/runs" > /dev/null
# Into a fresh folder, swapped in only on success: the leaderboard folder then holds exactly
# what this version writes (no plot left over from an older one).
rm -rf "$out/leaderboard.new"
sae-bench leaderboard "$out"/runs/*/results.json --out "$out/leaderboard.new" --quiet
rm -rf "$out/leaderboard" && mv "$out/leaderboard.new" "$out/leaderboard"
