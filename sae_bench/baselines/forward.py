"""A differentiable patched forward pass returning the full next-token logits at END.

`InterventionRunner.run` is gradient-free and reads out only the logit difference and the top-1
token; learning a steering vector or a scalar needs gradients, and the faithfulness score needs
the whole next-token distribution. `runner_end_logits` gives both from a runner's clean cache
(only the window from the earliest patched position is computed, as the runner does);
`end_logits` is the hook-based reference (same patch semantics as
`sae_bench.engine.patching`), used for models and hooks the window forward does not
reproduce, and to test the fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from sae_bench.engine.patching import write_at_node
from sae_bench.engine.runner import InterventionRunner
from sae_bench.engine.suffix_forward import SitePatch, block_window, site_of
from sae_bench.models.nodes import Node, validate_hook

# node -> [b, width] value to write, given the batch's row slice; may carry gradients.
PatchFn = Callable[[slice], Mapping[Node, torch.Tensor]]


def end_logits(model, tokens: torch.Tensor, positions: Mapping[str, torch.Tensor],
               nodes: Sequence[Node], patch: PatchFn, rows: slice) -> torch.Tensor:
    """Logits at END [b, d_vocab] of prompts `tokens[rows]` with `patch(rows)` written at the
    nodes. Gradients flow into the patch values (call under `torch.no_grad()` to score)."""
    for node in nodes:
        validate_hook(model, node)
    values = patch(rows)
    by_hook: dict[str, list[Node]] = {}
    for node in nodes:
        by_hook.setdefault(node.hook, []).append(node)
    device = model.cfg.device

    def make_hook(hook_nodes: list[Node]):
        def hook(act, hook):
            for node in hook_nodes:
                pos = positions[node.position][rows].to(act.device)
                act = write_at_node(act, pos, node, values[node].to(act.device))
            return act

        return hook

    fwd = [(h, make_hook(ns)) for h, ns in by_hook.items()]
    with model.hooks(fwd_hooks=fwd):
        # The residual stream after the last block, unembedded at END only (as
        # `runner_end_logits`): logits at every position are [b, seq, d_vocab], 0.9 GB for 256
        # prompts of GPT-2's vocabulary, and only END's are read.
        resid = model(tokens[rows].to(device), stop_at_layer=model.cfg.n_layers)
    h = resid[:, -1:]
    if model.cfg.normalization_type is not None:
        h = model.ln_final(h)
    return (h[:, 0] @ model.unembed.W_U + model.unembed.b_U).float().cpu()


def runner_end_logits(runner: InterventionRunner, patches: Mapping[Node, torch.Tensor],
                      rows: torch.Tensor) -> torch.Tensor:
    """Logits at END [b, d_vocab] of the runner's prompts `rows` [b] with patches {node:
    [b, width]} (gradients flow into the values). Reads the runner's clean cache (its keys,
    values and residual streams are clean activations, never parameters)."""
    model = runner.model
    sites = {node: site_of(node) for node in patches}
    if runner.fallback_reason is not None or any(s is None for s in sites.values()):
        return end_logits(model, runner.tokens[rows], {r: p[rows] for r, p in
                                                       runner.positions.items()},
                          list(patches), lambda _: patches, slice(0, len(rows)))
    dev = torch.device(model.cfg.device)
    by_layer: dict[int, dict[str, list[SitePatch]]] = {}
    earliest = runner.seq
    for node, value in patches.items():
        layer, site = sites[node]  # type: ignore[misc]
        pos = runner.positions[node.position][rows]
        earliest = min(earliest, int(pos.min()))
        by_layer.setdefault(layer, {}).setdefault(site, []).append(
            SitePatch(node, pos.to(dev), value.to(dev)))
    n_layers = model.cfg.n_layers
    first = min(by_layer)
    # As the runner's own patched runs: layers below its cache are recomputed whole.
    start = earliest if first >= runner.cache_from else 0
    x = runner._start_resid(first, rows, start)
    for layer in range(first, n_layers):
        k_prefix, v_prefix = runner._prefix(layer, rows, start)
        x = block_window(runner._layer(layer), x, start, k_prefix, v_prefix,
                         by_layer.get(layer, {}), end_only=layer == n_layers - 1)
    h = x[:, -1:]
    if model.cfg.normalization_type is not None:
        h = model.ln_final(h)
    return (h[:, 0] @ model.unembed.W_U + model.unembed.b_U).float().cpu()


@torch.no_grad()
def end_log_probs(runner: InterventionRunner, patches: Mapping[Node, torch.Tensor],
                  batch_size: int = 256) -> torch.Tensor:
    """Log-probabilities at END [n, d_vocab] of all the runner's prompts with fixed patch values
    {node: [n, width]} (no patch: the clean run)."""
    out = []
    for rows in torch.arange(runner.n).split(batch_size):
        if patches:
            logits = runner_end_logits(runner, {n: v[rows] for n, v in patches.items()}, rows)
        else:
            logits = end_logits(runner.model, runner.tokens[rows],
                                {r: p[rows] for r, p in runner.positions.items()}, [],
                                lambda _: {}, slice(0, len(rows)))
        out.append(torch.log_softmax(logits, -1))
    return torch.cat(out)
