"""Clean activations read from the intervention runner's cache (`InterventionRunner.activations`).

Split from `sae_bench.engine.runner` by concern: that module runs patched forwards; this one only
reads clean node values, straight from the cached residual stream, keys and values where the
cache holds them, else from one block over the needed window. `CleanReads` is a mixin of
`InterventionRunner` and uses its cache (`_resid`, `_k`, `_v`) and window helpers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sae_bench.engine.patching import collect_activations
from sae_bench.engine.suffix_forward import block_window, site_of
from sae_bench.models.nodes import Node, node_width


class CleanReads:
    """Methods of `InterventionRunner` that read clean activations (see the module docstring)."""

    @torch.no_grad()
    def activations(self, nodes: Sequence[Node]) -> dict[Node, torch.Tensor]:
        """Clean values {node: [n, width]} (float32, CPU), as `patching.collect_activations`.

        resid_pre, resid_post, k and v are read from the cache; other sites are computed by one
        block on the needed window (both equal to the reference to float32 rounding).
        """
        for node in nodes:
            node_width(self.model, node)
        fast, slow = [], []
        for node in nodes:
            site = site_of(node)
            ok = self.fallback_reason is None and site is not None and site[0] >= self.cache_from
            (fast if ok else slow).append(node)
        out: dict[Node, torch.Tensor] = {}
        if slow:
            out.update(collect_activations(self.model, self.tokens, self.positions, slow,
                                           batch_size=self.batch_size))
        by_layer: dict[int, list[Node]] = {}
        for node in fast:
            layer, site = site_of(node)
            direct = self._direct(node, layer, site)
            if direct is not None:
                out[node] = direct
            else:
                by_layer.setdefault(layer, []).append(node)
        for layer, layer_nodes in by_layer.items():
            out.update(self._layer_activations(layer, layer_nodes))
        return {node: out[node] for node in nodes}

    def _direct(self, node: Node, layer: int, site: str) -> torch.Tensor | None:
        """A node's clean value read straight from the cache, when the cache holds it."""
        if site == "hook_resid_pre":
            src = self._resid.get(layer)
        elif site == "hook_resid_post":  # block L's resid_post is block L+1's resid_pre
            src = self._resid.get(layer + 1)
        elif site in ("attn.hook_k", "attn.hook_v"):
            src = (self._k if site == "attn.hook_k" else self._v).get(layer)
            src = None if src is None else src.transpose(1, 2)  # back to [n, seq, H, d_head]
        else:
            src = None
        if src is None:
            return None
        pos = self.positions[node.position].to(src.device)
        x = src[torch.arange(self.n, device=src.device), pos]
        if node.head is not None:
            x = x[:, node.head]
        return x.reshape(self.n, -1).float().cpu()

    def _layer_activations(self, layer: int, nodes: Sequence[Node]) -> dict[Node, torch.Tensor]:
        """Clean values of nodes inside block `layer`, from one block on the needed window."""
        dev = self._device()
        chunks: dict[Node, list[torch.Tensor]] = {node: [] for node in nodes}
        for rows in torch.arange(self.n).split(self.batch_size):
            pos = {node: self.positions[node.position][rows].to(dev) for node in nodes}
            start = int(min(int(p.min()) for p in pos.values()))
            captures: dict = {}
            for node in nodes:
                captures.setdefault(site_of(node)[1], []).append((node, pos[node], chunks[node]))
            k_prefix, v_prefix = self._prefix(layer, rows, start)
            block_window(self._layer(layer), self._start_resid(layer, rows, start), start,
                         k_prefix, v_prefix, {}, captures=captures)
        return {node: torch.cat(c).float().cpu() for node, c in chunks.items()}
