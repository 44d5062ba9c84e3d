#!/usr/bin/env bash
# The sixteen shipped baselines (eight architectures and sparsities, on task prompts and on the
# model's training text) trained on ioi-circuit, the default model (GPT-2's circuit), at two
# nodes, scored and ranked:
#   nm-in:  blocks.2.hook_resid_post@END, what the name movers' queries (3.0, 3.1) read: Pos,
#           written by the S-inhibition heads 2.0 and 2.1;
#   nm-out: blocks.3.hook_resid_post@END, after the name movers (IO written).
#   bash reports/ioi-circuit/baselines.sh [OUT_DIR]   (default: reports/ioi-circuit)
set -euo pipefail
bash "$(dirname "$0")/../node_baselines.sh" ioi-circuit "${1:-reports/ioi-circuit}" shipped \
  nm-in=blocks.2.hook_resid_post@END nm-out=blocks.3.hook_resid_post@END
