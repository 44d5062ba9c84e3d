"""Fast interventions: the numbers of `sae_bench.engine.patching`, without recomputing what a patch
cannot change.

One clean pass caches, for every cached layer L, the residual stream entering block L and the
block's keys and values at every position. A patched run then

- starts at the earliest patched layer from the cached residual stream (earlier layers are clean);
- computes only positions from the batch's earliest patched position on (attention is causal, so
  earlier positions stay clean) and takes their keys/values from the cache;
- computes the last block at END only (other positions are needed there only as keys/values);
- unembeds END only, and only the two answer columns unless the argmax is asked for.

Prompts are batched in order of their earliest patched position so that a batch's window is as
short as its prompts allow (IOI's name positions differ between templates and orders).

Models or hooks that `sae_bench.engine.suffix_forward` does not reproduce (rotary, grouped-query or
parallel attention, hook_result, ...) fall back to `sae_bench.engine.patching` transparently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from sae_bench.engine.patching import PatchedOutput, run_patched
from sae_bench.engine.runner_reads import CleanReads
from sae_bench.engine.suffix_forward import (
    LayerWeights,
    SitePatch,
    block_window,
    readout,
    site_of,
    unsupported_reason,
)
from sae_bench.errors import UserError
from sae_bench.models.nodes import Node, node_width


@dataclass(frozen=True)
class RunOutput(PatchedOutput):
    """A `PatchedOutput` whose `argmax` is None when the run was asked for `argmax=False`.

    (A missing argmax is explicit rather than an empty-tensor sentinel, so a caller that did not
    ask for it fails loudly instead of comparing against nothing.)
    """

    argmax: torch.Tensor | None = None  # [n] top-1 token at END, or None if not computed


class InterventionRunner(CleanReads):
    """Patched runs of one prompt set, equal (to float32 rounding) to `patching.run_patched`.

    tokens: [n, seq] long; positions: role -> [n] long; answer_ids, distractor_ids: [n] long.
    cache_from_layer: layers below it are not cached (saves memory when no patch goes there);
    a run or activation there still works but recomputes those layers over the whole sequence.
    resid_layers: the layers whose input residual stream is cached (default: every cached
    layer). A run needs it only at its first patched layer, so a caller that knows where it will
    patch saves a third of the cache per other layer; a run starting elsewhere recomputes it.
    Cache size: (2 * (n_layers - cache_from_layer) + len(resid_layers)) * n * seq * d_model floats
    (keys and values, residual stream), e.g. at most 2.1 GB for GPT-2 Small, 1,000 prompts of 19
    tokens in float32.

    `fallback_reason` says why a model goes through `sae_bench.engine.patching` instead (None
    when the fast path is used). The model must not be modified while a runner built on it is in use
    (weights are laid out once and the cache holds its clean activations).
    """

    def __init__(
        self,
        model,
        tokens: torch.Tensor,
        positions: Mapping[str, torch.Tensor],
        answer_ids: torch.Tensor,
        distractor_ids: torch.Tensor,
        *,
        batch_size: int = 256,
        cache_from_layer: int = 0,
        resid_layers: Iterable[int] | None = None,
    ) -> None:
        self.model = model
        self.tokens = tokens
        self.positions = {role: pos.long() for role, pos in positions.items()}
        self.answer_ids = answer_ids.long()
        self.distractor_ids = distractor_ids.long()
        self.batch_size = batch_size
        self.n, self.seq = tokens.shape
        self.fallback_reason = unsupported_reason(model)
        self.cache_from = min(max(cache_from_layer, 0), model.cfg.n_layers)
        cached = range(self.cache_from, model.cfg.n_layers)
        self._resid_layers = set(cached) if resid_layers is None else set(resid_layers) & set(
            cached)
        self._weights: dict[int, LayerWeights] = {}
        self._resid: dict[int, torch.Tensor] = {}  # layer -> [n, seq, d_model] resid_pre
        # Keys/values head-major, layer -> [n, n_heads, seq, d_head], as attention consumes them.
        self._k: dict[int, torch.Tensor] = {}
        self._v: dict[int, torch.Tensor] = {}
        if self.fallback_reason is None:
            self._clean = self._clean_pass()
        else:
            out = run_patched(model, tokens, positions, {}, answer_ids, distractor_ids,
                              batch_size=batch_size)
            self._clean = RunOutput(out.logit_diff, out.argmax)

    # ---------------------------------------------------------------- public API

    def clean(self) -> RunOutput:
        """Logit difference [n] and argmax [n] at END of the unpatched prompts."""
        return self._clean

    @property
    def cache_nbytes(self) -> int:
        """Bytes held by the clean cache (residual streams, keys and values)."""
        tensors = [*self._resid.values(), *self._k.values(), *self._v.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    @torch.no_grad()
    def run(
        self,
        patches: Mapping[Node, torch.Tensor],
        *,
        argmax: bool = True,
        index: torch.Tensor | None = None,
    ) -> RunOutput:
        """Logit difference [m] (and argmax [m]) at END with every node in `patches` patched.

        patches: node -> [m, width] values, row i for prompt `index[i]` (all n prompts, in order,
        when `index` is None). argmax=False skips the full-vocabulary unembedding; the output's
        argmax is then None.
        """
        rows = torch.arange(self.n) if index is None else index.long().cpu()
        m = len(rows)
        for node, value in patches.items():
            width = node_width(self.model, node)
            if tuple(value.shape) != (m, width):
                raise UserError(
                    f"patch for {node.name} has shape {tuple(value.shape)}; expected "
                    f"({m}, {width}) (one row per prompt run)."
                )
        if not patches:
            ld = self._clean.logit_diff[rows]
            return RunOutput(ld, self._clean.argmax[rows] if argmax else None)
        sites = {node: site_of(node) for node in patches}
        if self.fallback_reason is not None or any(s is None for s in sites.values()):
            out = run_patched(
                self.model, self.tokens[rows], {r: p[rows] for r, p in self.positions.items()},
                patches, self.answer_ids[rows], self.distractor_ids[rows],
                batch_size=self.batch_size,
            )
            return RunOutput(out.logit_diff, out.argmax if argmax else None)

        pos = {node: self.positions[node.position][rows] for node in patches}
        first = torch.stack(list(pos.values())).amin(0)  # [m] earliest patched position
        order = torch.argsort(first, stable=True)
        ld = torch.empty(m)
        top = torch.empty(m, dtype=torch.long) if argmax else None
        for chunk in self._chunks(order, first[order]):
            batch = {node: (pos[node][chunk], value[chunk]) for node, value in patches.items()}
            b_ld, b_top = self._run_batch(rows[chunk], batch, sites, argmax)
            ld[chunk] = b_ld
            if top is not None:
                top[chunk] = b_top
        return RunOutput(ld, top)

    # ---------------------------------------------------------------- internals

    def _chunks(self, order: torch.Tensor, first: torch.Tensor) -> list[torch.Tensor]:
        """Split `order` (prompts sorted by earliest patched position `first`, both [m]) into
        batches of about `batch_size` full sequences' worth of window positions.

        Short windows get more prompts per batch (fewer, larger operations), capped at
        4 * batch_size prompts to bound the [b, d_vocab] logits of an argmax run.
        """
        chunks, i = [], 0
        while i < len(order):
            window = self.seq - int(first[i])
            size = min(4 * self.batch_size, max(1, self.batch_size * self.seq // window))
            chunks.append(order[i : i + size])
            i += size
        return chunks

    def _device(self) -> torch.device:
        return torch.device(self.model.cfg.device)

    def _layer(self, layer: int) -> LayerWeights:
        if layer not in self._weights:
            self._weights[layer] = LayerWeights.of(self.model, layer)
        return self._weights[layer]

    @torch.no_grad()
    def _clean_pass(self) -> RunOutput:
        """One batched forward pass through the window forward (start 0) that fills the cache;
        the last block computes END only. Clean outputs at END."""
        model, cfg = self.model, self.model.cfg
        dev = self._device()
        for layer in range(self.cache_from, cfg.n_layers):
            shape = (self.n, cfg.n_heads, self.seq, cfg.d_head)
            if layer in self._resid_layers:
                self._resid[layer] = torch.empty(self.n, self.seq, cfg.d_model, dtype=cfg.dtype,
                                                 device=dev)
            self._k[layer] = torch.empty(shape, dtype=cfg.dtype, device=dev)
            self._v[layer] = torch.empty(shape, dtype=cfg.dtype, device=dev)
        lds, tops = [], []
        last = cfg.n_layers - 1
        for start in range(0, self.n, self.batch_size):
            sl = slice(start, min(self.n, start + self.batch_size))
            # The embeddings exactly as TransformerLens computes them (its forward, no block).
            x = model(self.tokens[sl].to(dev), stop_at_layer=0)
            for layer in range(cfg.n_layers):
                kv: list[torch.Tensor] | None = [] if layer in self._k else None
                if layer in self._resid:
                    self._resid[layer][sl] = x
                x = block_window(self._layer(layer), x, 0, None, None, {},
                                 end_only=layer == last, kv_out=kv)
                if kv:
                    self._k[layer][sl], self._v[layer][sl] = kv
            ld, top = readout(model, x[:, -1], self.answer_ids[sl].to(dev),
                              self.distractor_ids[sl].to(dev), argmax=True)
            lds.append(ld.cpu())
            tops.append(top.cpu())
        return RunOutput(torch.cat(lds), torch.cat(tops))

    def _rows(self, cache: torch.Tensor, rows: torch.Tensor, window: int | None = None):
        """cache[rows] as a view when `rows` is a contiguous range (common: no sort was needed);
        with `window`, a writable copy of cache[rows, window:]."""
        r0 = int(rows[0])
        if torch.equal(rows, torch.arange(r0, r0 + len(rows))):
            view = cache[r0 : r0 + len(rows)]
            return view if window is None else view[:, window:].clone()
        rows = rows.to(cache.device)
        return cache.index_select(0, rows) if window is None else cache[rows, window:]

    def _start_resid(self, layer: int, rows: torch.Tensor, start: int) -> torch.Tensor:
        """Clean resid_pre [b, seq - start, d_model] of block `layer` for prompts `rows` (a copy:
        patches are written into it)."""
        if layer in self._resid:
            return self._rows(self._resid[layer], rows, window=start)
        # Not cached: recompute the clean prefix of the model through TransformerLens.
        toks = self.tokens[rows].to(self._device())
        return self.model(toks, stop_at_layer=layer)[:, start:]

    def _prefix(self, layer: int, rows: torch.Tensor, start: int):
        """Clean keys and values [b, n_heads, start, d_head] before the window (read only)."""
        if start == 0:
            return None, None
        k, v = self._rows(self._k[layer], rows), self._rows(self._v[layer], rows)
        return k[:, :, :start], v[:, :, :start]

    def _run_batch(
        self,
        rows: torch.Tensor,
        batch: Mapping[Node, tuple[torch.Tensor, torch.Tensor]],
        sites: Mapping[Node, tuple[int, str]],
        argmax: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """LD [b] (and argmax [b]) of prompts `rows` [b]; batch: node -> (pos [b], value [b, w])."""
        dev = self._device()
        n_layers = self.model.cfg.n_layers
        by_layer: dict[int, dict[str, list[SitePatch]]] = {}
        for node, (pos, value) in batch.items():
            layer, site = sites[node]
            patch = SitePatch(node, pos.to(dev), value.to(dev))
            by_layer.setdefault(layer, {}).setdefault(site, []).append(patch)
        first_layer = min(by_layer)
        earliest = int(min(int(pos.min()) for pos, _ in batch.values()))

        def window(layer: int) -> int:
            # Uncached layers have no clean keys/values to reuse: compute every position there.
            return earliest if layer >= self.cache_from else 0

        start = window(first_layer)
        x = self._start_resid(first_layer, rows, start)
        for layer in range(first_layer, n_layers):
            new_start = window(layer)
            x, start = x[:, new_start - start:], new_start
            k_prefix, v_prefix = self._prefix(layer, rows, start)
            x = block_window(self._layer(layer), x, start, k_prefix, v_prefix,
                             by_layer.get(layer, {}), end_only=layer == n_layers - 1)
        ld, top = readout(self.model, x[:, -1], self.answer_ids[rows].to(dev),
                          self.distractor_ids[rows].to(dev), argmax=argmax)
        return ld.cpu(), None if top is None else top.cpu()


