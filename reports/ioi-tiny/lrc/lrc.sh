#!/usr/bin/env bash
# Rebuild the LRC reports under reports/ioi-tiny/lrc/ (issue 17, part 2); commentary in ../lrc.md.
# The model's default prompt counts (20,000 fit / 5,000 eval), seed 0.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=reports/ioi-tiny/lrc
sae-bench reference --task ioi --model ioi-tiny --lrc --out $OUT/reference.json --quiet \
  > $OUT/reference.txt
sae-bench run --sae reports/ioi-tiny/saes/topk-k4-task.safetensors \
  --sae reports/ioi-tiny/saes/gated-l1_8-task.safetensors \
  --task ioi --model ioi-tiny --comparator lrc --out $OUT/runs --quiet > /dev/null
python reports/ioi-tiny/lrc/diagnose.py > $OUT/diagnose.txt
