"""One transformer block computed on a window of positions, reusing cached clean keys/values.

The forward pass of a TransformerLens `HookedTransformer` block, re-written with the model's own
weights and submodules (its `ln1`/`ln2`/`ln_final` modules and `mlp.act_fn` are called as they
are, so every normalisation type and activation function TransformerLens implements is reproduced)
but restricted to the positions a patch can change. `sae_bench.engine.runner` drives it and is
tested against the hook-based reference in `sae_bench.engine.patching`.

A *window* is the positions `start..seq-1` of every prompt in a batch. Positions before `start`
are clean (no patch can reach them: attention is causal), so their keys and values come from a
cache of the clean run and only the window is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sae_bench.models.nodes import Node

# Hook sites inside a block (the part of the hook name after "blocks.L.") that the window
# forward implements, in the order the block computes them.
SITES = (
    "hook_resid_pre",
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_z",
    "hook_attn_out",
    "hook_resid_mid",
    "mlp.hook_pre",
    "mlp.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
)


def site_of(node: Node) -> tuple[int, str] | None:
    """(layer, site) of a node whose hook the window forward implements, else None."""
    parts = node.hook.split(".", 2)
    if len(parts) != 3 or parts[0] != "blocks" or not parts[1].isdigit():
        return None
    return (int(parts[1]), parts[2]) if parts[2] in SITES else None


def unsupported_reason(model) -> str | None:
    """Why the window forward cannot reproduce `model` (then callers use the reference), or None.

    Anything beyond a GPT-2-style pre-norm block with absolute position embeddings is refused
    rather than approximated: a silent numerical mismatch would be worse than a slow run.
    """
    from transformer_lens import HookedTransformer
    from transformer_lens.components import Attention, TransformerBlock
    from transformer_lens.components.mlps.mlp import MLP

    cfg = model.cfg
    if not isinstance(model, HookedTransformer):
        return f"{type(model).__name__} is not a HookedTransformer"
    if cfg.positional_embedding_type != "standard":
        return f"positional_embedding_type={cfg.positional_embedding_type!r}"
    if cfg.dtype not in (torch.float32, torch.float64):
        return f"dtype {cfg.dtype} (LayerNorm upcasts; only float32/float64 are reproduced)"
    flags = (
        "use_attn_result", "use_split_qkv_input", "use_attn_in", "use_qk_norm", "use_logn_attn",
        "use_local_attn", "parallel_attn_mlp", "use_normalization_before_and_after",
        "use_attention_sinks", "load_in_4bit", "gated_mlp",
    )
    for flag in flags:
        if getattr(cfg, flag, False):
            return f"{flag}=True"
    if cfg.n_key_value_heads is not None:
        return "grouped-query attention"
    if getattr(cfg, "clip_qkv", None) is not None:
        return "clip_qkv"
    if cfg.attention_dir != "causal":
        return f"attention_dir={cfg.attention_dir!r}"
    for cap in ("attn_scores_soft_cap", "output_logits_soft_cap"):
        if (getattr(cfg, cap, -1.0) or -1.0) > 0:
            return f"{cap}>0"
    if cfg.n_devices != 1:
        return "model split over several devices"
    if cfg.is_layer_norm_activation():
        return f"act_fn={cfg.act_fn!r} (LayerNorm inside the MLP)"
    for block in model.blocks:
        if type(block) is not TransformerBlock or type(block.attn) is not Attention:
            return f"block type {type(block).__name__}/{type(block.attn).__name__}"
        if not cfg.attn_only and type(block.mlp) is not MLP:
            return f"MLP type {type(block.mlp).__name__}"
    tok = model.tokenizer
    if tok is not None and tok.padding_side == "left":
        # TransformerLens then builds a padding mask and shifts positions; not reproduced.
        return "tokenizer pads on the left"
    return None


@dataclass(frozen=True)
class LayerWeights:
    """One block's weights, laid out once for fused projections (model weights are frozen)."""

    w_qkv: torch.Tensor  # [3 * n_heads * d_head, d_model]: q, k, v rows stacked
    b_qkv: torch.Tensor  # [3 * n_heads * d_head]
    w_o: torch.Tensor  # [d_model, n_heads * d_head]
    b_o: torch.Tensor  # [d_model]
    attn_scale: float
    n_heads: int
    d_head: int
    block: torch.nn.Module  # for ln1, ln2 and mlp (weights and act_fn)

    @classmethod
    def of(cls, model, layer: int) -> LayerWeights:
        block = model.blocks[layer]
        attn = block.attn
        n_heads, d_head = attn.b_Q.shape

        def rows(w: torch.Tensor) -> torch.Tensor:  # [H, d_model, d_head] -> [H*d_head, d_model]
            return w.permute(0, 2, 1).reshape(n_heads * d_head, -1)

        return cls(
            w_qkv=torch.cat([rows(attn.W_Q), rows(attn.W_K), rows(attn.W_V)]).contiguous(),
            b_qkv=torch.cat([attn.b_Q.flatten(), attn.b_K.flatten(), attn.b_V.flatten()]),
            w_o=attn.W_O.reshape(n_heads * d_head, -1).T.contiguous(),
            b_o=attn.b_O,
            attn_scale=float(attn.attn_scale),
            n_heads=n_heads,
            d_head=d_head,
            block=block,
        )


@dataclass(frozen=True)
class SitePatch:
    """Values written at one hook site: `value[i]` goes to prompt i's position `pos[i]`."""

    node: Node
    pos: torch.Tensor  # [b] long, absolute positions
    value: torch.Tensor  # [b, width]


def _put(act: torch.Tensor, start: int, patch: SitePatch) -> None:
    """Write a patch in place into `act` [b, t, ...] holding positions start..start+t-1.

    Entries before the window are dropped: only the last layer shrinks its window (to END), and
    there such an entry cannot reach the logits at END.
    """
    rel = patch.pos - start
    rows = torch.arange(act.shape[0], device=act.device)
    value = patch.value.to(act.dtype)
    keep = (rel >= 0) & (rel < act.shape[1])
    if not bool(keep.all()):
        rows, rel, value = rows[keep], rel[keep], value[keep]
    if patch.node.head is not None:
        act[rows, rel, patch.node.head] = value
    else:
        act[rows, rel] = value.reshape(-1, *act.shape[2:])


def _get(act: torch.Tensor, start: int, node: Node, pos: torch.Tensor) -> torch.Tensor:
    """[b, width] value of `node` at absolute positions `pos` from `act` [b, t, ...]."""
    rows = torch.arange(act.shape[0], device=act.device)
    x = act[rows, pos - start]
    if node.head is not None:
        x = x[:, node.head]
    return x.reshape(act.shape[0], -1)


Patches = Mapping[str, Sequence[SitePatch]]  # site -> patches, applied in order
# site -> (node, positions [b], list the node's [b, width] values are appended to)
Captures = dict[str, list[tuple[Node, torch.Tensor, list[torch.Tensor]]]]


def _hook(act: torch.Tensor, start: int, site: str, patches: Patches, captures: Captures | None):
    """Apply this site's patches to `act` in place, then record captured values (post-patch)."""
    for patch in patches.get(site, ()):
        _put(act, start, patch)
    if captures is not None:
        for node, pos, out in captures.get(site, ()):
            out.append(_get(act, start, node, pos))
    return act


def block_window(
    lw: LayerWeights,
    x: torch.Tensor,
    start: int,
    k_prefix: torch.Tensor | None,
    v_prefix: torch.Tensor | None,
    patches: Patches,
    *,
    end_only: bool = False,
    captures: Captures | None = None,
    kv_out: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """One block on the window `start..seq-1`; returns its resid_post there.

    x: [b, t, d_model] resid_pre at the window. k_prefix, v_prefix: [b, n_heads, start, d_head]
    clean keys/values of the positions before the window (None when start == 0).
    end_only: the block is the last one and only END's output is wanted, so keys/values are
    computed on the whole window (END attends to them) but everything else on END alone; the
    result is then [b, 1, d_model].
    kv_out: if given, the window's keys and values [b, n_heads, t, d_head] (after any patch) are
    appended to it, for the runner's clean cache.
    """
    block = lw.block
    b, t, _ = x.shape
    hd = lw.n_heads * lw.d_head
    seq = start + t
    x = _hook(x, start, "hook_resid_pre", patches, captures)
    h = block.ln1(x)
    q_start = seq - 1 if end_only else start
    if end_only:
        kv = F.linear(h, lw.w_qkv[hd:], lw.b_qkv[hd:])
        q = F.linear(h[:, -1:], lw.w_qkv[:hd], lw.b_qkv[:hd])
        x = x[:, -1:]
    else:
        qkv = F.linear(h, lw.w_qkv, lw.b_qkv)
        q, kv = qkv[..., :hd], qkv[..., hd:]
    q = _hook(q.reshape(b, -1, lw.n_heads, lw.d_head), q_start, "attn.hook_q", patches, captures)
    k = kv[..., :hd].reshape(b, t, lw.n_heads, lw.d_head)
    v = kv[..., hd:].reshape(b, t, lw.n_heads, lw.d_head)
    # Head-major [b, H, pos, d_head] from here: the cache's layout, so no copy for the matmuls.
    k = _hook(k, start, "attn.hook_k", patches, captures).transpose(1, 2)
    v = _hook(v, start, "attn.hook_v", patches, captures).transpose(1, 2)
    q = q.transpose(1, 2)
    if kv_out is not None:
        kv_out.extend((k, v))

    # TransformerLens' AbstractAttention.forward, with the keys split into the cached prefix and
    # the window rather than concatenated (the prefix may be a view into the cache: no copy).
    scores = q @ k.transpose(2, 3)  # [b, H, tq, t]
    if start > 0:
        scores = torch.cat([q @ k_prefix.transpose(2, 3), scores], -1)  # [b, H, tq, seq]
    scores = scores / lw.attn_scale
    q_pos = torch.arange(q_start, seq, device=x.device)
    mask = torch.arange(seq, device=x.device)[None, :] <= q_pos[:, None]
    scores = torch.where(mask, scores, torch.tensor(-torch.inf, device=x.device))
    pattern = F.softmax(scores, dim=-1)
    pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern).to(v.dtype)
    z = pattern[..., start:] @ v
    if start > 0:
        z = pattern[..., :start] @ v_prefix + z
    z = z.transpose(1, 2)  # [b, tq, H, d_head]
    z = _hook(z, q_start, "attn.hook_z", patches, captures)
    attn_out = F.linear(z.reshape(b, -1, hd), lw.w_o, lw.b_o)
    attn_out = _hook(attn_out, q_start, "hook_attn_out", patches, captures)
    if block.cfg.attn_only:
        return _hook(x + attn_out, q_start, "hook_resid_post", patches, captures)

    resid_mid = _hook(x + attn_out, q_start, "hook_resid_mid", patches, captures)
    mlp = block.mlp
    h2 = block.ln2(resid_mid)
    tq = h2.shape[1]
    pre = torch.addmm(mlp.b_in, h2.reshape(b * tq, -1), mlp.W_in).view(b, tq, -1)
    pre = _hook(pre, q_start, "mlp.hook_pre", patches, captures)
    post = _hook(mlp.act_fn(pre), q_start, "mlp.hook_post", patches, captures)
    mlp_out = torch.addmm(mlp.b_out, post.reshape(b * tq, -1), mlp.W_out).view(b, tq, -1)
    mlp_out = _hook(mlp_out, q_start, "hook_mlp_out", patches, captures)
    return _hook(resid_mid + mlp_out, q_start, "hook_resid_post", patches, captures)


def readout(
    model,
    resid_end: torch.Tensor,
    answer_ids: torch.Tensor,
    distractor_ids: torch.Tensor,
    *,
    argmax: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logit difference [b] and (if `argmax`) top-1 token [b] from the final resid_post at END.

    resid_end: [b, d_model]. Without `argmax` only the two answer columns of the unembedding are
    used (two dot products per prompt instead of d_vocab).
    """
    x = resid_end[:, None]
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x)
    x = x[:, 0]
    w_u, b_u = model.unembed.W_U, model.unembed.b_U
    if argmax:
        logits = torch.addmm(b_u, x, w_u).float()
        rows = torch.arange(len(x), device=x.device)
        ld = logits[rows, answer_ids] - logits[rows, distractor_ids]
        return ld, logits.argmax(-1)

    def logit(ids: torch.Tensor) -> torch.Tensor:
        return ((x * w_u.T[ids]).sum(-1) + b_u[ids]).float()

    return logit(answer_ids) - logit(distractor_ids), None
