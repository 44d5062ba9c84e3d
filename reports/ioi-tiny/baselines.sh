#!/usr/bin/env bash
# Rebuild the sixteen shipped reference SAEs for ioi-tiny's main cross-section (eight
# architectures and sparsities, on task prompts and on training text), score them, and write the
# leaderboard. Deterministic (seed 0); resumable.
#   bash reports/ioi-tiny/baselines.sh [OUT_DIR]   (default: reports/ioi-tiny)
set -euo pipefail
bash "$(dirname "$0")/../node_baselines.sh" ioi-tiny "${1:-reports/ioi-tiny}" shipped \
  =blocks.0.hook_resid_post@END
