"""Mean Jacobian of a downstream object with respect to a node, by autograd.

The downstream object (**choice**, see sae_bench/lrc/README.md) is the final residual stream at
END, before the final LayerNorm: the vector whose readout through the unembedding is the answer
logit. For a node at block L the clean residual stream entering block L is computed once without
gradients, and only blocks L.. are run with the node's value replaced by a leaf tensor, so the
Jacobian costs one forward pass from the node on and one batched backward pass per chunk of
output coordinates.

Prompts are independent rows of a batch, so ∂h_p/∂a_q = 0 for p ≠ q and one vector-Jacobian
product with the same output direction for every prompt gives every prompt's row at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from sae_bench.engine.patching import write_at_node
from sae_bench.engine.suffix_forward import (
    LayerWeights,
    SitePatch,
    block_window,
    site_of,
    unsupported_reason,
)
from sae_bench.errors import UserError
from sae_bench.models.nodes import Node, node_width

END_ROLE = "END"
# Output coordinates whose vector-Jacobian products are vectorised together (bounds the
# [chunk, batch, width] gradient tensor).
OUTPUT_CHUNK = 64


def downstream_node(model) -> Node:
    """The downstream object as a node: the last block's resid_post at END."""
    return Node(f"blocks.{model.cfg.n_layers - 1}.hook_resid_post", END_ROLE)


def mean_jacobian(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                  chunk: int = OUTPUT_CHUNK) -> torch.Tensor:
    """E_p[∂fn(x)_p / ∂x_p] [m, w] for a row-wise function `fn`: [b, w] → [b, m].

    `fn` must treat rows independently (as a batch of prompts does); the result is in x's dtype.
    """
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        y = fn(leaf)
        if y.ndim != 2 or y.shape[0] != x.shape[0]:
            raise ValueError(f"fn must map [b, w] to [b, m]; got {tuple(y.shape)}")
        m = y.shape[1]
        rows = []
        for lo in range(0, m, chunk):
            hi = min(m, lo + chunk)
            # One output direction e_k per batched backward, the same for every prompt.
            eye = torch.eye(m, dtype=y.dtype, device=y.device)[lo:hi]  # [c, m]
            cot = eye[:, None, :].expand(hi - lo, y.shape[0], m)
            (g,) = torch.autograd.grad(y, leaf, grad_outputs=cot, is_grads_batched=True,
                                       retain_graph=hi < m, allow_unused=True)
            # Unused: the object does not depend on x (e.g. a query at S2 in the last block).
            rows.append(torch.zeros(hi - lo, x.shape[1], dtype=x.dtype, device=x.device)
                        if g is None else g.mean(1))  # [c, w]
    return torch.cat(rows).detach()


def node_to_object(model, tokens: torch.Tensor, positions: Mapping[str, torch.Tensor],
                   node: Node) -> Callable[[torch.Tensor], torch.Tensor]:
    """fn: node value [b, width] → downstream object [b, d_model] on prompts `tokens` [b, seq],
    everything else clean."""
    node_width(model, node)  # validates the hook and head
    n_layers = model.cfg.n_layers
    if END_ROLE not in positions or node.position not in positions:
        raise UserError(f"the LRC's downstream object is read at role {END_ROLE} and the node at "
                        f"{node.position}; the task's prompts have roles {', '.join(positions)}.")
    if node.layer >= n_layers:
        raise UserError(f"node {node.name} is not upstream of the final residual stream, so the "
                        "LRC's downstream object does not depend on it; use a node inside the "
                        "blocks.")
    device = model.cfg.device
    toks = tokens.to(device)
    pos = positions[node.position].to(device)
    end = positions[END_ROLE].to(device)
    rows = torch.arange(len(toks), device=device)
    in_blocks = node.hook.startswith("blocks.")
    start = node.layer if in_blocks else None
    with torch.no_grad():
        # The clean residual stream entering the node's block (embeddings when the node sits
        # before the blocks: then the whole model runs with gradients).
        prefix = model(toks, stop_at_layer=start) if start is not None else None

    def fn(value: torch.Tensor) -> torch.Tensor:
        fired: list[bool] = []

        def hook(act, hook):
            fired.append(True)
            return write_at_node(act, pos, node, value)

        with model.hooks(fwd_hooks=[(node.hook, hook)]):
            if prefix is not None:
                resid = model(prefix, start_at_layer=start, stop_at_layer=n_layers)
            else:
                resid = model(toks, stop_at_layer=n_layers)
        if not fired:
            raise UserError(f"hook {node.hook} did not run between the node and the final "
                            "residual stream; the LRC needs a node inside the blocks.")
        return resid[rows, end]

    return fn


def suffix_to_object(model, tokens: torch.Tensor, positions: Mapping[str, torch.Tensor],
                     node: Node) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Like `node_to_object`, through `sae_bench.engine.suffix_forward`: blocks from the node's
    on, on the positions from the node's on only (earlier keys and values from one clean pass), so a
    node at END costs one position per block. None where the window forward does not
    reproduce the model or the hook (then use `node_to_object`)."""
    site = site_of(node)
    if site is None or unsupported_reason(model) is not None:
        return None
    node_width(model, node)
    layer, name = site
    n_layers = model.cfg.n_layers
    device = model.cfg.device
    toks = tokens.to(device)
    pos = positions[node.position].to(device)
    start = int(pos.min())
    weights = [LayerWeights.of(model, li) for li in range(n_layers)]
    keys, values = {}, {}
    with torch.no_grad():
        x = model(toks, stop_at_layer=0)
        for li in range(n_layers):
            if li == layer:
                resid = x
            kv: list[torch.Tensor] = []
            x = block_window(weights[li], x, 0, None, None, {}, kv_out=kv)
            keys[li], values[li] = kv

    def fn(value: torch.Tensor) -> torch.Tensor:
        patches = {name: [SitePatch(node, pos, value)]}
        h = resid[:, start:].clone()  # written in place by a resid_pre patch
        for li in range(layer, n_layers):
            k_prefix = keys[li][:, :, :start] if start else None
            v_prefix = values[li][:, :, :start] if start else None
            h = block_window(weights[li], h, start, k_prefix, v_prefix,
                             patches if li == layer else {}, end_only=li == n_layers - 1)
        return h[:, -1]

    return fn


def node_jacobian(model, tokens: torch.Tensor, positions: Mapping[str, torch.Tensor],
                  node: Node, acts: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Mean Jacobian [d_model, width] of the final residual at END with respect to `node`, over
    the prompts `tokens` [n, seq] whose clean node values are `acts` [n, width] (float32)."""
    n = len(tokens)
    if n == 0:
        raise UserError("no correctly answered fit prompts to estimate the LRC's Jacobian on; "
                        "use more fit prompts (--n-fit) or a model that solves the task.")
    total = None
    for lo in range(0, n, batch_size):
        sl = slice(lo, min(n, lo + batch_size))
        pos = {r: p[sl] for r, p in positions.items()}
        fn = (suffix_to_object(model, tokens[sl], pos, node)
              or node_to_object(model, tokens[sl], pos, node))
        dtype = model.cfg.dtype
        jac = mean_jacobian(fn, acts[sl].to(model.cfg.device, dtype)).double().cpu()
        total = jac * (sl.stop - lo) if total is None else total + jac * (sl.stop - lo)
    assert total is not None
    return total / n
