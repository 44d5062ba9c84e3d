"""Clean node activations of any prompt set, computed only as far as the nodes need.

`patching.collect_activations` (the reference) runs TransformerLens up to the last node's block
over every position. Here, as in the suffix-only runner:

- prompts are batched in order of the last position any node reads, and each batch is cut after
  that position (attention is causal: later tokens cannot change earlier activations);
- the blocks run through `suffix_forward.block_window` (one fused q/k/v projection);
- in the last block, when every node there reads the batch's final position (or a key, value or
  the block's input), only that position is computed beyond the keys and values.

Equal to the reference to float32 rounding (tests/test_collect.py). Models or hooks the window
forward does not reproduce go through the reference unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from sae_bench.engine.patching import collect_activations
from sae_bench.engine.suffix_forward import (
    Captures,
    LayerWeights,
    block_window,
    site_of,
    unsupported_reason,
)
from sae_bench.models.nodes import Node, node_width

# Sites that block_window computes at every window position even when only END's output is
# wanted (the block's input, and the keys and values END attends to).
_WHOLE_WINDOW_SITES = ("hook_resid_pre", "attn.hook_k", "attn.hook_v")


@torch.no_grad()
def node_activations(
    model,
    tokens: torch.Tensor,
    positions: Mapping[str, torch.Tensor],
    nodes: Sequence[Node],
    *,
    batch_size: int = 256,
) -> dict[Node, torch.Tensor]:
    """Clean activations {node: [n, width]} (float32, CPU) of `nodes` on `tokens` [n, seq]."""
    widths = {node: node_width(model, node) for node in nodes}  # validates hooks and heads
    found_sites = {node: site_of(node) for node in nodes}
    sites = {node: site for node, site in found_sites.items() if site is not None}
    if unsupported_reason(model) is not None or len(sites) < len(nodes):
        return collect_activations(model, tokens, positions, nodes, batch_size=batch_size)
    pos = {node: positions[node.position].long() for node in nodes}
    last_pos = torch.stack(list(pos.values())).amax(0)  # [n] last position any node reads
    last_layer = max(layer for layer, _ in sites.values())
    weights = [LayerWeights.of(model, layer) for layer in range(last_layer + 1)]
    dev = torch.device(model.cfg.device)
    out = {node: torch.empty(len(tokens), widths[node]) for node in nodes}
    for rows in torch.argsort(last_pos, stable=True).split(batch_size):
        t = int(last_pos[rows].max()) + 1
        found: dict[Node, list[torch.Tensor]] = {node: [] for node in nodes}
        captures: dict[int, Captures] = {}
        for node in nodes:
            layer, site = sites[node]
            captures.setdefault(layer, {}).setdefault(site, []).append(
                (node, pos[node][rows].to(dev), found[node]))
        end_only = all(
            site in _WHOLE_WINDOW_SITES or bool((pos[node][rows] == t - 1).all())
            for node, (layer, site) in sites.items() if layer == last_layer
        )
        # The embeddings exactly as TransformerLens computes them (its forward, no block run).
        x = model(tokens[rows, :t].to(dev), stop_at_layer=0)
        for layer in range(last_layer + 1):
            x = block_window(weights[layer], x, 0, None, None, {},
                             end_only=end_only and layer == last_layer,
                             captures=captures.get(layer))
        for node in nodes:
            out[node][rows] = found[node][0].float().cpu()
    return out
