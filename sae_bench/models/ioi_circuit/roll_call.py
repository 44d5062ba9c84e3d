"""Behaviour and heads on roll-call episodes (`corpus.roll_call_episode`): a shuffled run of
one-name sentences saying IO once, S once and other names ("D") two or three times, then a
closing with S2. Only a model trained with `--roll-call` knows their words.

    python -m sae_bench.models.ioi_circuit.roll_call --assets DIR [--n 300]

prints accuracy and mean logit differences at END (IO - S, and IO - the most repeated other
name), then per head: mean attention from END to IO, S1, S2 and to all D mentions together,
from S2 to S1, from D's later mentions to its earlier ones (duplicate-token heads) and to the
tokens right after them (induction heads), and the head's direct logit attribution to IO - S.
On these prompts a bag of the body's names gives D more weight than IO; GPT-2's circuit (name
movers attending IO alone, told by S-inhibition which names are repeated) still answers IO.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.errors import UserError
from sae_bench.models.ioi_circuit import corpus
from sae_bench.tasks.ioi.vocab import NAMES, OBJECTS, PLACES

COLUMNS = ("END>IO", "END>S1", "END>S2", "END>D", "S2>S1", "Dn>D1", "Dn>D1+1", "DLA")


@dataclass(frozen=True)
class RollCallPrompt:
    """One prompt ending at END; positions include <bos>. `d_first` / `d_later`: D's first
    mention and its later ones (all repeated names but S)."""

    tokens: torch.Tensor  # [seq]
    io: int  # token ids of IO, S and the most mentioned other name
    s: int
    d: int
    io_pos: int
    s1_pos: int
    s2_pos: int
    d_first: tuple[int, ...]
    d_later: tuple[int, ...]

    @property
    def end(self) -> int:
        return len(self.tokens) - 1


def prompts(tokenizer, n: int, seed: int) -> list[RollCallPrompt]:
    """`n` roll-call prompts, names drawn from the eval half of NAMES (four distinct per
    prompt), closings from `corpus.CLOSINGS`. Raises UserError if the tokenizer lacks their
    words (a model not trained with `--roll-call`)."""
    vocab = tokenizer.get_vocab()
    gen = torch.Generator().manual_seed(seed)
    draw = corpus._Draw(gen)
    half = len(NAMES) // 2
    out = []
    for _ in range(n):
        io, s, d, e = (NAMES[int(i)] for i in torch.randperm(half, generator=gen)[:4])
        fill = {"A": io, "B": s, "D": d, "E": e, "place": draw.pick(PLACES),
                "object": draw.pick(OBJECTS)}
        ep = corpus.roll_call_episode(draw, draw.pick(corpus.LEAD_INS),
                                      draw.pick(corpus.CLOSINGS), fill)
        body = corpus.spaced(ep.pieces[: ep.end + 1], first=True)
        missing = [piece for piece in body if piece not in vocab]
        if missing:
            raise UserError(f"the model's vocabulary lacks {missing[0]!r}, a word of the "
                            "roll-call prompts; use a model trained with --roll-call")
        ids = [tokenizer.bos_token_id] + [vocab[p] for p in body]
        others = {name: [j + 1 for j, p in enumerate(ep.pieces[: ep.s2]) if p == " " + name]
                  for name in (d, e)}
        top = max(others, key=lambda k: len(others[k]))
        first = tuple(v[0] for v in others.values() if v)
        later = tuple(p for v in others.values() for p in v[1:])
        out.append(RollCallPrompt(torch.tensor(ids), vocab[" " + io], vocab[" " + s],
                                  vocab[" " + top], ep.io + 1, ep.s1 + 1, ep.s2 + 1, first,
                                  later))
    return out


@torch.no_grad()
def measure(model, items: list[RollCallPrompt]) -> tuple[dict[str, float],
                                                          dict[tuple[int, int], dict[str, float]]]:
    """(behaviour, {(layer, head): {column: mean over prompts}}) with `COLUMNS`' head columns.
    DLA: the head's output at END on W_U[IO] - W_U[S], through the final LN's scale."""
    L, H = model.cfg.n_layers, model.cfg.n_heads
    sums = torch.zeros(L, H, len(COLUMNS), dtype=torch.float64)
    correct = ld_s = ld_d = 0.0
    for p in items:
        logits, cache = model.run_with_cache(
            p.tokens[None],
            names_filter=lambda n: n.endswith(("hook_pattern", "hook_z", "final.hook_scale")))
        end_logits = logits[0, p.end]
        correct += float(end_logits.argmax() == p.io)
        ld_s += float(end_logits[p.io] - end_logits[p.s])
        ld_d += float(end_logits[p.io] - end_logits[p.d])
        direction = model.W_U[:, p.io] - model.W_U[:, p.s]
        scale = (float(cache["ln_final.hook_scale"][0, p.end, 0])
                 if "ln_final.hook_scale" in cache else 1.0)
        for layer in range(L):
            pat = cache[f"blocks.{layer}.attn.hook_pattern"][0]  # [head, q, k]
            z = cache[f"blocks.{layer}.attn.hook_z"][0, p.end]  # [head, d_head]
            dla = torch.einsum("hd,hdm,m->h", z, model.W_O[layer], direction) / scale
            # A duplicate-token head attends from a later mention to the name's earlier ones.
            # An induction head attends to the tokens right after those earlier mentions.
            dup, ind = ((torch.stack([pat[:, q, _earlier_copies(p, q) + shift].sum(-1)
                                      for q in p.d_later]).mean(0)
                         if p.d_later else torch.zeros(H)) for shift in (0, 1))
            row = (pat[:, p.end, p.io_pos], pat[:, p.end, p.s1_pos], pat[:, p.end, p.s2_pos],
                   pat[:, p.end, list(p.d_first + p.d_later)].sum(-1),
                   pat[:, p.s2_pos, p.s1_pos], dup, ind, dla)
            sums[layer] += torch.stack(row, -1).double()
    n = len(items)
    behaviour = {"n": n, "accuracy": correct / n, "ld_io_s": ld_s / n, "ld_io_d": ld_d / n}
    means = sums / n
    return behaviour, {(layer, h): dict(zip(COLUMNS, (float(v) for v in means[layer, h]),
                                            strict=True))
                       for layer in range(L) for h in range(H)}


def _earlier_copies(p: RollCallPrompt, q: int) -> torch.Tensor:
    """Positions before `q` holding the same token as `q`."""
    return (p.tokens[:q] == p.tokens[q]).nonzero().flatten()


def main(argv: list[str] | None = None) -> int:
    from sae_bench.models.ioi_circuit.circuit import diagnosed_model

    args, model = diagnosed_model("roll_call", __doc__, argv, n=300, seed=4)
    behaviour, heads = measure(model, prompts(model.tokenizer, args.n, args.seed))
    print(f"roll-call prompts: n={behaviour['n']}  accuracy={behaviour['accuracy']:.3f}  "
          f"LD(IO-S)={behaviour['ld_io_s']:.2f}  LD(IO-D)={behaviour['ld_io_d']:.2f}")
    print("\nhead " + "".join(f"{c:>8}" for c in COLUMNS))
    for (layer, head), row in heads.items():
        print(f"{layer}.{head:<3}" + "".join(f"{v:8.2f}" for v in row.values()))
    return 0


if __name__ == "__main__":
    from sae_bench.errors import run_script

    raise SystemExit(run_script(main, "python -m sae_bench.models.ioi_circuit.roll_call"))
