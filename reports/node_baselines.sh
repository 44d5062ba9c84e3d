#!/usr/bin/env bash
# Reference SAEs on one model, trained at each node given, scored (one shared run per node) and
# ranked in one leaderboard. Deterministic (seed 0); resumable (finished SAEs are not retrained,
# --skip-completed keeps finished evaluations).
#   bash reports/node_baselines.sh MODEL OUT_DIR SET [LABEL]=NODE [...]
# SET names the SAEs trained at every node:
#   shipped  the sixteen shipped baselines: eight architectures and sparsities, each trained on
#            the task's prompts (-task) and on the model's training text (-text);
#   five     five SAEs on the task's prompts (ioi-planted, which has no training text).
# An SAE is written to OUT_DIR/saes/LABEL-NAME.safetensors (NAME alone when LABEL is empty).
set -euo pipefail
model=$1 out=$2 set=$3
shift 3
case $set in
  shipped) data_sources="task text" list='relu-l1_0.3 relu --l1 0.3
relu-l1_3 relu --l1 3
gated-l1_1 gated --l1 1
gated-l1_8 gated --l1 8
topk-k4 topk --k 4
topk-k16 topk --k 16
batchtopk-k4 batchtopk --k 4
batchtopk-k16 batchtopk --k 16' ;;
  five) data_sources="task" list='relu-l1_1 relu --l1 1
gated-l1_1 gated --l1 1
gated-l1_8 gated --l1 8
topk-k4 topk --k 4
batchtopk-k4 batchtopk --k 4' ;;
  *) echo "unknown SAE set '$set'; give shipped or five" >&2; exit 2 ;;
esac
mkdir -p "$out/saes" "$out/runs"
for where in "$@"; do
  label=${where%%=*} node=${where#*=}
  saes=()
  while read -r name arch sparsity; do
    for data in $data_sources; do
      # Only a set with more than one data source names it (the five keep their old names).
      if [ "$data_sources" = task ]; then file=$name; else file=$name-$data; fi
      sae="$out/saes/${label:+$label-}$file.safetensors"
      [ -f "$sae" ] || sae-bench train-sae --model "$model" --arch "$arch" $sparsity \
        --node "$node" --data "$data" --d-sae 512 --steps 1000 --seed 0 --out "$sae" --quiet
      saes+=(--sae "$sae")
    done
  done <<< "$list"
  # One run scores the node's SAEs against a shared clean run, counterfactuals and dictionaries;
  # each lands in $out/runs/<SAE name>/ exactly as a run of that SAE alone would write it.
  sae-bench run "${saes[@]}" --task ioi --model "$model" --seed 0 --quiet --skip-completed \
    --out "$out/runs" > /dev/null
done
# Into a fresh folder, swapped in only on success: the leaderboard folder then holds exactly
# what this version writes (no plot left over from an older one).
rm -rf "$out/leaderboard.new"
sae-bench leaderboard "$out"/runs/*/results.json --out "$out/leaderboard.new" --quiet
rm -rf "$out/leaderboard" && mv "$out/leaderboard.new" "$out/leaderboard"
