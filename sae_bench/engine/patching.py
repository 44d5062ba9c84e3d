"""Reading and patching node activations through TransformerLens hooks (full recomputation).

This is the reference implementation of the intervention semantics:
`sae_bench.engine.runner` computes the same numbers faster and is tested against it.

Semantics: a node's value for prompt p is the hook's activation at that prompt's role position
(for head hooks, one head's slice, or all heads flattened when `head` is None). A patch replaces
exactly those entries, for all nodes of a cross-section in one forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from sae_bench.models.nodes import Node, validate_hook


@dataclass(frozen=True)
class PatchedOutput:
    logit_diff: torch.Tensor  # [n] logit(answer) - logit(distractor) at END
    argmax: torch.Tensor  # [n] top-1 token at END


def _rows(act: torch.Tensor, pos: torch.Tensor, node: Node) -> torch.Tensor:
    """[b, width] view-free gather of a node's value from a hook activation."""
    rows = torch.arange(act.shape[0], device=act.device)
    x = act[rows, pos]
    if node.head is not None:
        x = x[:, node.head]
    return x.reshape(act.shape[0], -1)


def write_at_node(act: torch.Tensor, pos: torch.Tensor, node: Node,
                  value: torch.Tensor) -> torch.Tensor:
    """A copy of the hook activation with the node's entries replaced (autograd-safe: the
    input is not modified, so gradients flow into `value`)."""
    rows = torch.arange(act.shape[0], device=act.device)
    act = act.clone()
    if node.head is not None:
        act[rows, pos, node.head] = value.to(act.dtype)
    else:
        act[rows, pos] = value.to(act.dtype).reshape(act[rows, pos].shape)
    return act


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


@torch.no_grad()
def collect_activations(
    model,
    tokens: torch.Tensor,
    positions: Mapping[str, torch.Tensor],
    nodes: Sequence[Node],
    *,
    batch_size: int = 256,
) -> dict[Node, torch.Tensor]:
    """Clean activations {node: [n, width]} of `nodes` on `tokens` (one pass per batch)."""
    for node in nodes:
        validate_hook(model, node)
    device = model.cfg.device
    out: dict[Node, list[torch.Tensor]] = {node: [] for node in nodes}
    by_hook: dict[str, list[Node]] = {}
    for node in nodes:
        by_hook.setdefault(node.hook, []).append(node)
    last_layer = max(n.layer for n in nodes)
    for sl in _batches(len(tokens), batch_size):

        def make_hook(hook_nodes, sl=sl):
            def hook(act, hook):
                for node in hook_nodes:
                    pos = positions[node.position][sl].to(act.device)
                    out[node].append(_rows(act, pos, node).float().cpu())

            return hook

        fwd = [(h, make_hook(ns)) for h, ns in by_hook.items()]
        stop = last_layer + 1 if last_layer < model.cfg.n_layers else None
        with model.hooks(fwd_hooks=fwd):
            model(tokens[sl].to(device), stop_at_layer=stop)
    return {node: torch.cat(chunks) for node, chunks in out.items()}


@torch.no_grad()
def run_patched(
    model,
    tokens: torch.Tensor,
    positions: Mapping[str, torch.Tensor],
    patches: Mapping[Node, torch.Tensor],
    answer_ids: torch.Tensor,
    distractor_ids: torch.Tensor,
    *,
    batch_size: int = 256,
) -> PatchedOutput:
    """Logit difference and argmax at END with every node in `patches` set to its value."""
    for node in patches:
        validate_hook(model, node)
    device = model.cfg.device
    by_hook: dict[str, list[Node]] = {}
    for node in patches:
        by_hook.setdefault(node.hook, []).append(node)
    lds, tops = [], []
    for sl in _batches(len(tokens), batch_size):

        def make_hook(hook_nodes, sl=sl):
            def hook(act, hook):
                for node in hook_nodes:
                    pos = positions[node.position][sl].to(act.device)
                    act = write_at_node(act, pos, node, patches[node][sl].to(act.device))
                return act

            return hook

        fwd = [(h, make_hook(ns)) for h, ns in by_hook.items()]
        with model.hooks(fwd_hooks=fwd):
            logits = model(tokens[sl].to(device))[:, -1].float().cpu()
        rows = torch.arange(logits.shape[0])
        lds.append(logits[rows, answer_ids[sl]] - logits[rows, distractor_ids[sl]])
        tops.append(logits.argmax(-1))
    return PatchedOutput(torch.cat(lds), torch.cat(tops))
