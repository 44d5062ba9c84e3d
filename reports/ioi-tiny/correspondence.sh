#!/usr/bin/env bash
# Correspondence reports (sae-bench compare) at ioi-tiny's main node, from the shipped baseline
# SAEs (reports/ioi-tiny/saes/, built by baselines.sh). Deterministic (seed 0).
#   bash reports/ioi-tiny/correspondence.sh [OUT_DIR]   (default: reports/ioi-tiny/correspondence)
set -euo pipefail
saes=reports/ioi-tiny/saes
out=${1:-reports/ioi-tiny/correspondence}
while read -r name a b extra; do
  # shellcheck disable=SC2086  # $extra: further options, word-split on purpose
  sae-bench compare "$a" "$b" $extra --task ioi --model ioi-tiny --seed 0 --quiet \
    --out "$out/$name" > /dev/null
done <<LIST
topk-k4-task_vs_supervised $saes/topk-k4-task.safetensors supervised:lstsq
batchtopk-k4-task_vs_supervised $saes/batchtopk-k4-task.safetensors supervised:lstsq
relu-l1_0.3-task_vs_supervised $saes/relu-l1_0.3-task.safetensors supervised:lstsq
topk-k4-task_vs_topk-k4-text $saes/topk-k4-task.safetensors $saes/topk-k4-text.safetensors
topk-k4-task_vs_batchtopk-k4-task $saes/topk-k4-task.safetensors $saes/batchtopk-k4-task.safetensors
topk-k4-task_vs_itself $saes/topk-k4-task.safetensors $saes/topk-k4-task.safetensors
supervised-mean_vs_lstsq supervised:mean supervised:lstsq --node blocks.0.hook_resid_post@END
LIST
