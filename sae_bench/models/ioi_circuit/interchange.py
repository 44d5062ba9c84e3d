"""Interchange-intervention training (IIT): a loss that makes chosen heads carry the variables of
GPT-2's IOI circuit, so the trained model computes IOI through them.

Sixteen runs trained on IOI text alone (model card, runs r11-r27) all solved the task by where
the pair sits, never through duplicate-token, S-inhibition and name-mover heads. IIT (Geiger et
al. 2022; InterpBench's SIIT, Gupta et al. 2024) trains the circuit in instead of hoping for it:
a high-level causal model of the task names what each node computes, nodes are mapped onto
heads, and the low-level model is trained so that patching a head from another prompt changes
the output exactly as patching its node changes the high-level model's.

The high-level model (the IOI circuit of Wang et al. 2022, reduced to one variable per class):
- DUP at S2 (duplicate-token heads): which slot of the opening's pair holds S1 (Pos);
- INH at END (S-inhibition heads): DUP's value, moved to END;
- NM at END (name movers): the pair's name at the slot INH does not mark; the model's answer.

Pairs (base, source) share an episode's words and fillers, so every role sits at the same
position in both; the source has other IO and S names and, half the time, the pair's order
flipped (Pos). For each pair four patched runs of the base are trained to give:
- NM heads at END patched from the source: the source's IO;
- INH heads at END, or DUP heads at S2, patched: the base's name at the slot the source's S1
  does not hold (base IO if Pos is unchanged, base S if flipped);
- every head at every position patched from the source, except the circuit's nodes (DUP heads
  at S2, INH and NM heads at END): the base's IO. This is SIIT's strictness term: without it a
  shortcut next to the circuit keeps working. It covers the mapped heads at other positions and
  layer 0 too: with layer 0 left free at all but END, a fine-tune of run r22 gathered the pair at
  another position, the name movers read it there (IO and S alike) and S was subtracted at END.
Gradients flow through the source run as well as the patched base runs. With a weight
(`attention`), each mapped head is also trained to attend its node's token in the source run
(`ATTENDS`: name movers END->IO, S-inhibition END->S2, duplicate-token S2->S1): without that
term no run left chance on the three circuit kinds (model card, r28-r38).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sae_bench.models.ioi_circuit import corpus
from sae_bench.models.ioi_circuit.circuit import Head
from sae_bench.models.ioi_circuit.templates import (
    CLOSINGS,
    HELD_OUT_CLOSINGS,
    HELD_OUT_OPENINGS,
    LEAD_INS,
    OPENINGS,
    TASK_CLOSINGS,
    TASK_OPENINGS,
    THIRD_NAME_CLOSINGS,
    THIRD_NAME_OPENINGS,
    VARIED_OPENINGS,
)
from sae_bench.models.ioi_tiny.corpus import _distinct_allowed
from sae_bench.tasks.ioi.prompts import PREFIX, TEMPLATES
from sae_bench.tasks.ioi.vocab import NAMES

KINDS = ("nm", "inh", "dup", "strict")
# What each node's heads attend in an unpatched run (query role -> key role): the attention of
# GPT-2's classes (Wang et al. 2022), reported per node and, with a weight, trained.
ATTENDS = {"nm": ("end", "io"), "inh": ("end", "s2"), "dup": ("s2", "s1")}
# What the strict run patches: every head at every position but the circuit's nodes ("all"), or
# one head drawn per pair, at every position but where it is a node ("one"; InterpBench's SIIT
# ablates sampled nodes, not all at once).
STRICTNESS = ("all", "one")


def parse_heads(text: str) -> tuple[Head, ...]:
    """"3.0,3.1" -> ((3, 0), (3, 1)). Raises ValueError on anything else."""
    out = []
    for item in text.split(","):
        layer, _, head = item.strip().partition(".")
        if not (layer.isdigit() and head.isdigit()):
            raise ValueError(f"expected heads as LAYER.HEAD[,LAYER.HEAD...], got {text!r}")
        out.append((int(layer), int(head)))
    return tuple(out)


@dataclass(frozen=True)
class CircuitMap:
    """Which heads implement which node of the high-level model."""

    dup: tuple[Head, ...]
    inh: tuple[Head, ...]
    nm: tuple[Head, ...]

    def check(self, n_layers: int, n_heads: int) -> None:
        heads = self.dup + self.inh + self.nm
        for layer, head in heads:
            if not (0 <= layer < n_layers and 0 <= head < n_heads):
                raise ValueError(f"head {layer}.{head} is not in a {n_layers}x{n_heads} model")
        if len(set(heads)) != len(heads):
            raise ValueError("a head is mapped to two nodes of the circuit")
        # Each node reads the one before it, so it must sit in a later layer.
        if not (max(h[0] for h in self.dup) < min(h[0] for h in self.inh)
                and max(h[0] for h in self.inh) < min(h[0] for h in self.nm)):
            raise ValueError("the circuit's heads must be in layers DUP < INH < NM")


@dataclass(frozen=True)
class Pairs:
    """A batch of (base, source) prompts, right-padded, that end at END: tokens [b, L] each,
    END and S2 positions [b], the four kinds' labels [b], the base's IO and S1 positions [b] and
    whether the source flips the pair (its IO where the base's S1 is) [b]."""

    base: torch.Tensor
    source: torch.Tensor
    end: torch.Tensor
    s2: torch.Tensor
    labels: dict[str, torch.Tensor]
    io: torch.Tensor
    s1: torch.Tensor
    flip: torch.Tensor
    # Per pair, a number in [0, 1) that picks the one head the strict run patches (`STRICTNESS`
    # "one"); None when every head is patched ("all").
    pick: torch.Tensor | None = None


# Where a pair's episode comes from: the training templates with fillers, the task's own prompts
# (`tasks.ioi.prompts`, no fillers), or the openings and closings no training episode uses.
TEMPLATE_SETS = ("train", "task", "held_out")


def _episode(draw: corpus._Draw, names: list[str], max_fillers: int, varied_pairs: float,
             templates: str) -> corpus.Episode:
    """An episode with IO = names[0], S = names[1] and third name names[2] (`TEMPLATE_SETS`)."""
    fill = {"A": names[0], "B": names[1], "D": names[2], "place": draw.pick(corpus.PLACES),
            "object": draw.pick(corpus.OBJECTS)}
    if templates == "task":
        t = draw.int(len(TEMPLATES))
        return corpus.episode(PREFIX.strip(), TASK_OPENINGS[t], TASK_CLOSINGS[t] + " {IO}.",
                              names[0], names[1], draw.coin(0.5), fill)
    if templates == "held_out":
        opening, closing = draw.pick(HELD_OUT_OPENINGS), draw.pick(HELD_OUT_CLOSINGS)
    else:
        opening = draw.pick(OPENINGS + THIRD_NAME_OPENINGS)
        if varied_pairs > 0 and draw.coin(varied_pairs):
            opening = draw.pick(VARIED_OPENINGS)
        closing = draw.pick(CLOSINGS + THIRD_NAME_CLOSINGS)
    ep = corpus.episode(draw.pick(LEAD_INS), opening, closing, names[0], names[1],
                        draw.coin(0.5), fill)
    return corpus._with_fillers(draw, ep, max_fillers)


def sample_pairs(tokenizer, n: int, gen: torch.Generator, max_fillers: int = 8,
                 varied_pairs: float = 0.0, templates: str = "train",
                 strictness: str = "all") -> Pairs:
    """`n` (base, source) pairs drawn from `gen` only (episodes as in `_episode`). Every name
    pair within a prompt (base and source names together) is allowed in training (no held-out
    pair). `strictness` (`STRICTNESS`): "one" also draws each pair's `pick`."""
    draw = corpus._Draw(gen)
    casts = _distinct_allowed(n, 5, gen)  # base IO, base S, third name, source IO, source S
    flips = torch.rand(n, generator=gen) < 0.5
    bases, sources, ends, s2s, ios, s1s = [], [], [], [], [], []
    labels: dict[str, list[int]] = {k: [] for k in KINDS}
    for i in range(n):
        names = [NAMES[int(j)] for j in casts[i]]
        ep = _episode(draw, names, max_fillers, varied_pairs, templates)
        prompt = ep.pieces[: ep.end + 1]
        src = list(prompt)
        # The source's names at the base's slots: Pos flipped puts its S where the base's IO is.
        s_at, io_at = (ep.io, ep.s1) if flips[i] else (ep.s1, ep.io)
        src[s_at], src[io_at], src[ep.s2] = " " + names[4], " " + names[3], " " + names[4]
        ids = [tokenizer.convert_tokens_to_ids(corpus.spaced(p, first=True)) for p in (prompt, src)]
        bases.append([tokenizer.bos_token_id, *ids[0]])
        sources.append([tokenizer.bos_token_id, *ids[1]])
        ends.append(ep.end + 1)  # +1 for <bos>
        s2s.append(ep.s2 + 1)
        ios.append(ep.io + 1)
        s1s.append(ep.s1 + 1)
        io, s, src_io = (tokenizer.convert_tokens_to_ids(" " + names[j]) for j in (0, 1, 3))
        labels["nm"].append(src_io)
        labels["inh"].append(s if flips[i] else io)
        labels["dup"].append(s if flips[i] else io)
        labels["strict"].append(io)
    length = max(map(len, bases))

    def pad(rows: list[list[int]]) -> torch.Tensor:
        return torch.tensor([r + [tokenizer.pad_token_id] * (length - len(r)) for r in rows])

    pick = torch.rand(n, generator=gen) if strictness == "one" else None
    return Pairs(pad(bases), pad(sources), torch.tensor(ends), torch.tensor(s2s),
                 {k: torch.tensor(v) for k, v in labels.items()}, torch.tensor(ios),
                 torch.tensor(s1s), flips, pick)


def patch_masks(cmap: CircuitMap, pairs: Pairs, n_layers: int, n_heads: int
                ) -> dict[int, torch.Tensor]:
    """Per layer, a bool [4b, L, heads] mask of the (row, position, head) entries of `hook_z`
    taken from the source; rows are the four kinds of `KINDS` in order, b rows each."""
    b, length = pairs.base.shape
    rows = torch.arange(b)
    masks = {layer: torch.zeros(len(KINDS) * b, length, n_heads, dtype=torch.bool)
             for layer in range(n_layers)}
    roles = {"nm": (cmap.nm, pairs.end), "inh": (cmap.inh, pairs.end), "dup": (cmap.dup, pairs.s2)}
    strict = slice((len(KINDS) - 1) * b, len(KINDS) * b)
    if pairs.pick is None:
        for layer in masks:
            masks[layer][strict] = True  # every head everywhere, but for the circuit's nodes:
    else:  # one head per pair, everywhere, but where it is a node:
        which = (pairs.pick * n_layers * n_heads).long()
        for r in range(b):
            layer, head = divmod(int(which[r]), n_heads)
            masks[layer][strict][r, :, head] = True
    for k, (heads, where) in enumerate(roles.values()):
        for layer, head in heads:
            masks[layer][k * b:(k + 1) * b][rows, where, head] = True
            masks[layer][strict][rows, where, head] = False
    return masks


def node_attention(patterns: dict[int, torch.Tensor], cmap: CircuitMap, pairs: Pairs
                   ) -> dict[str, torch.Tensor]:
    """Per node of `ATTENDS`, each mapped head's attention from its query role to its key role in
    the source run [b, heads of the node] (the source holds every role where the base does; its
    IO and S1 swap slots when the pair is flipped). `patterns`: layer -> hook_pattern."""
    rows = torch.arange(len(pairs.source))
    at = {"end": pairs.end, "s2": pairs.s2, "io": torch.where(pairs.flip, pairs.s1, pairs.io),
          "s1": torch.where(pairs.flip, pairs.io, pairs.s1)}
    heads = {"nm": cmap.nm, "inh": cmap.inh, "dup": cmap.dup}
    return {node: torch.stack([patterns[layer][rows, head, at[query], at[key]]
                               for layer, head in heads[node]], dim=1)
            for node, (query, key) in ATTENDS.items()}


def interchange_loss(model, cmap: CircuitMap, pairs: Pairs, attention: float = 0.0,
                     floor: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean cross-entropy of the four kinds' patched runs against their labels, plus
    `attention` times the mean negative log of each mapped head's attention to its node's key
    role (`ATTENDS`) in the source run (with `floor` > 0, of min(attention / floor, 1): no pull
    once the floor is reached). Also returns each kind's accuracy (top-1 equals the
    label) and each node's mean attention ("attn_nm", "attn_inh", "attn_dup")."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    masks = patch_masks(cmap, pairs, n_layers, n_heads)
    k = len(KINDS)
    # Not detached (`run_with_cache` would detach): the loss trains the patched heads' work on
    # the source too. Without it the name movers get no gradient to attend IO alone in the
    # source, and a model that sends both names through them and subtracts S later stays at
    # chance on the patched runs (r30 in the model card: 0.52 over 300 pairs). With the
    # gradient, runs r32-r38 did not leave chance either; only with the attention term
    # (`attention` > 0) did the patched runs leave chance (model card, r39 on).
    cache: dict[str, torch.Tensor] = {}

    def keep(x, hook):
        cache[hook.name] = x

    patched = [layer for layer in range(n_layers) if masks[layer].any()]
    node_layers = sorted({layer for layer, _ in cmap.dup + cmap.inh + cmap.nm})
    model.run_with_hooks(
        pairs.source,
        fwd_hooks=[(f"blocks.{layer}.attn.hook_z", keep) for layer in patched]
        + [(f"blocks.{layer}.attn.hook_pattern", keep) for layer in node_layers])
    attends = node_attention({layer: cache[f"blocks.{layer}.attn.hook_pattern"]
                              for layer in node_layers}, cmap, pairs)

    def hook(layer: int):
        source = cache[f"blocks.{layer}.attn.hook_z"].repeat(k, 1, 1, 1)
        mask = masks[layer][..., None]

        def fn(z, hook):
            return torch.where(mask, source, z)
        return fn

    hooks = [(f"blocks.{layer}.attn.hook_z", hook(layer)) for layer in patched]
    logits = model.run_with_hooks(pairs.base.repeat(k, 1), fwd_hooks=hooks)
    rows = torch.arange(len(logits))
    end_logits = logits[rows, pairs.end.repeat(k)]  # [k*b, vocab]
    labels = torch.cat([pairs.labels[kind] for kind in KINDS])
    loss = F.cross_entropy(end_logits, labels)
    if attention > 0:
        # Clamped so a head attending nothing there gives a finite, steep loss.
        def pull(a: torch.Tensor) -> torch.Tensor:
            a = a.clamp_min(1e-6)
            return (a / floor).clamp_max(1.0) if floor > 0 else a

        loss = loss + attention * torch.stack(
            [-pull(a).log().mean() for a in attends.values()]).mean()
    hit = (end_logits.argmax(-1) == labels).float().view(k, -1).mean(1)
    stats = {kind: float(h) for kind, h in zip(KINDS, hit, strict=True)}
    stats.update({f"attn_{node}": float(a.detach().mean()) for node, a in attends.items()})
    return loss, stats


def main(argv: list[str] | None = None) -> int:
    """Print each kind's interchange accuracy and the loss of a model under a circuit map."""
    import argparse
    from pathlib import Path

    from sae_bench.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m sae_bench.models.ioi_circuit.interchange",
                                     description=main.__doc__)
    parser.add_argument("--assets", type=Path, required=True, help="a trained model's folder")
    parser.add_argument("--dup", default="1.0")
    parser.add_argument("--inh", default="2.0,2.1")
    parser.add_argument("--nm", default="3.0,3.1")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    # "one", as the shipped recipe trains (`train.TrainConfig.iit_strictness`).
    parser.add_argument("--strictness", choices=STRICTNESS, default="one")
    parser.add_argument("--attention", type=float, default=0.0,
                        help="weight of the attention term in the printed loss")
    args = parser.parse_args(argv)
    from sae_bench.models.ioi_circuit.model import load_from

    model = load_from(args.assets)
    try:
        cmap = CircuitMap(parse_heads(args.dup), parse_heads(args.inh), parse_heads(args.nm))
        cmap.check(model.cfg.n_layers, model.cfg.n_heads)
    except ValueError as e:
        raise UserError(f"{e}; pass --dup, --inh and --nm as LAYER.HEAD lists") from None
    columns = [*KINDS, *(f"attn_{node}" for node in ATTENDS)]
    print("templates  " + "  ".join(f"{k:>8}" for k in columns) + "    loss")
    for templates in TEMPLATE_SETS:
        pairs = sample_pairs(model.tokenizer, args.n, torch.Generator().manual_seed(args.seed),
                             templates=templates, strictness=args.strictness)
        with torch.no_grad():
            loss, hits = interchange_loss(model, cmap, pairs, args.attention)
        print(f"{templates:<9}  " + "  ".join(f"{hits[k]:8.3f}" for k in columns)
              + f"  {float(loss):6.3f}")
    return 0


if __name__ == "__main__":
    from sae_bench.errors import run_script

    raise SystemExit(run_script(main, "python -m sae_bench.models.ioi_circuit.interchange"))
