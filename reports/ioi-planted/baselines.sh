#!/usr/bin/env bash
# SAEs on ioi-planted (the hand-set circuit), scored and ranked, at two nodes:
#   nm-in:  blocks.1.hook_resid_post@END, what the name movers read (S and Pos, from the
#           S-inhibition heads; IO is not there yet);
#   nm-out: blocks.2.hook_resid_post@END, after the name movers (IO written; S and Pos still
#           present but read by nothing downstream).
#   bash reports/ioi-planted/baselines.sh [OUT_DIR]   (default: reports/ioi-planted)
set -euo pipefail
bash "$(dirname "$0")/../node_baselines.sh" ioi-planted "${1:-reports/ioi-planted}" five \
  nm-in=blocks.1.hook_resid_post@END nm-out=blocks.2.hook_resid_post@END
