"""ioi-circuit's behaviour floors: IOI accuracy and logit difference on the task's prompts and on
stress sets that a template memoriser fails.

Stress sets (IO and S from the task's eval names, the first 100; every prompt ends at END):

- ``unseen_templates``: episodes whose opening or closing never occurs in training
  (`corpus.HELD_OUT_OPENINGS` / `HELD_OUT_CLOSINGS`), `UNSEEN_TEMPLATES` (11 templates).
- ``fillers``: the task's three templates with 0-8 filler words inserted at random points among
  three gaps: before the names (after "Then,"), between the clauses, before END.
- ``in_context``: a task prompt after 1-3 distractor sentences (names from the whole list, IO or
  S among them a third of the time), so the prompt ends at token 25-60.

accuracy = the top-1 token at END is IO; LD = logit(IO) - logit(S) at END. Each set also reports
the prompts whose (IO, S) pair is held out of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.models.ioi_circuit import corpus
from sae_bench.models.ioi_tiny.corpus import held_out
from sae_bench.tasks.ioi.prompts import PREFIX
from sae_bench.tasks.ioi.vocab import NAMES, OBJECTS, PLACES

ROLES = ("IO", "S1", "S2", "END")

UNSEEN_TEMPLATES = tuple(
    [(o, c) for o in corpus.HELD_OUT_OPENINGS for c in corpus.HELD_OUT_CLOSINGS]
    + [(o, "{C} gave a {object} to {IO}.") for o in corpus.HELD_OUT_OPENINGS]
    + [("{A} and {B} went to the {place}.", c) for c in corpus.HELD_OUT_CLOSINGS]
)
TASK_TEMPLATES = tuple(zip(corpus.TASK_OPENINGS, (c + " {IO}." for c in corpus.TASK_CLOSINGS),
                           strict=True))


@dataclass(frozen=True)
class PromptSet:
    """Prompts of possibly different lengths, each ending at END. Positions include <bos>."""

    name: str
    tokens: list[torch.Tensor]  # each [seq]
    io: torch.Tensor  # [n] indices into NAMES
    s: torch.Tensor
    positions: dict[str, torch.Tensor]  # role -> [n]


def _ids(tokenizer, piece_list: list[str]) -> torch.Tensor:
    """<bos> + one id per piece; a piece outside the vocabulary is a bug in the set's text."""
    vocab = tokenizer.get_vocab()
    missing = [p for p in piece_list if p not in vocab]
    assert not missing, f"pieces outside the vocabulary: {missing}"
    return torch.tensor([tokenizer.bos_token_id] + [vocab[p] for p in piece_list])


def _names(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """IO and S from the eval half of NAMES, distinct."""
    half = len(NAMES) // 2
    io = torch.randint(half, (n,), generator=gen)
    s = (io + 1 + torch.randint(half - 1, (n,), generator=gen)) % half
    return io, s


def _fill(i: int, gen: torch.Generator) -> dict[str, str]:
    return {"place": PLACES[int(torch.randint(len(PLACES), (1,), generator=gen))],
            "object": OBJECTS[int(torch.randint(len(OBJECTS), (1,), generator=gen))]}


def _build(name: str, tokenizer, n: int, gen: torch.Generator, make) -> PromptSet:
    """`make(i, io, s, abb)` -> (pieces ending at END, {role: piece index}) for each prompt."""
    io, s = _names(n, gen)
    abb = torch.randint(2, (n,), generator=gen) == 0
    tokens: list[torch.Tensor] = []
    pos: dict[str, list[int]] = {r: [] for r in ROLES}
    for i in range(n):
        piece_list, roles = make(i, NAMES[int(io[i])], NAMES[int(s[i])], bool(abb[i]))
        ids = _ids(tokenizer, piece_list)
        for r in ROLES:
            pos[r].append(roles[r] + 1)  # +1 for <bos>
        tokens.append(ids)
        assert int(ids[roles["IO"] + 1]) == tokenizer.get_vocab()[" " + NAMES[int(io[i])]]
        assert int(ids[roles["S2"] + 1]) == tokenizer.get_vocab()[" " + NAMES[int(s[i])]]
    return PromptSet(name, tokens, io, s, {r: torch.tensor(v) for r, v in pos.items()})


def _roles(ep: corpus.Episode, offset: int = 0) -> dict[str, int]:
    return {"IO": ep.io + offset, "S1": ep.s1 + offset, "S2": ep.s2 + offset,
            "END": ep.end + offset}


def unseen_template_set(tokenizer, n: int, gen: torch.Generator) -> PromptSet:
    def make(i, io, s, abb):
        opening, closing = UNSEEN_TEMPLATES[i % len(UNSEEN_TEMPLATES)]
        ep = corpus.episode(PREFIX.strip(), opening, closing, io, s, abb, _fill(i, gen))
        return corpus.spaced(ep.pieces[: ep.end + 1], first=True), _roles(ep)

    return _build("unseen_templates", tokenizer, n, gen, make)


def filler_set(tokenizer, n: int, gen: torch.Generator, max_fillers: int = 8) -> PromptSet:
    def make(i, io, s, abb):
        opening, closing = TASK_TEMPLATES[i % len(TASK_TEMPLATES)]
        ep = corpus.episode(PREFIX.strip(), opening, closing, io, s, abb, _fill(i, gen))
        # Gaps: before the names (after "Then,"), between the clauses, before END.
        gaps = (2, ep.pieces.index(".") + 1, ep.end)
        k = int(torch.randint(max_fillers + 1, (1,), generator=gen))
        slots = [gaps[int(torch.randint(3, (1,), generator=gen))] for _ in range(k)]
        words = [corpus.FILLERS[int(torch.randint(len(corpus.FILLERS), (1,), generator=gen))]
                 for _ in range(k)]
        ep = corpus.insert_fillers(ep, slots, words)
        return corpus.spaced(ep.pieces[: ep.end + 1], first=True), _roles(ep)

    return _build("fillers", tokenizer, n, gen, make)


def in_context_set(tokenizer, n: int, gen: torch.Generator) -> PromptSet:
    def make(i, io, s, abb):
        before: list[str] = []
        for _ in range(1 + int(torch.randint(3, (1,), generator=gen))):
            others = torch.randperm(len(NAMES), generator=gen)[:5].tolist()
            cast = [NAMES[j] for j in others if NAMES[j] not in (io, s)][:3]
            if float(torch.rand(1, generator=gen)) < 1 / 3:
                cast[0] = io if float(torch.rand(1, generator=gen)) < 0.5 else s
            t = corpus.DISTRACTOR_TEMPLATES[
                int(torch.randint(len(corpus.DISTRACTOR_TEMPLATES), (1,), generator=gen))]
            fill = {**_fill(i, gen), "object2": OBJECTS[0], "A": cast[0], "B": cast[1],
                    "C": cast[2]}
            before += corpus.template_pieces(t, fill)[0]
        opening, closing = TASK_TEMPLATES[i % len(TASK_TEMPLATES)]
        ep = corpus.episode(PREFIX.strip(), opening, closing, io, s, abb, _fill(i, gen))
        piece_list = corpus.spaced(before + ep.pieces[: ep.end + 1], first=True)
        return piece_list, _roles(ep, len(before))

    return _build("in_context", tokenizer, n, gen, make)


@torch.no_grad()
def end_logits(model, ps: PromptSet, batch_size: int = 500) -> torch.Tensor:
    """[n, d_vocab] logits at END, batching prompts of equal length together."""
    out = torch.empty(len(ps.tokens), model.cfg.d_vocab)
    by_len: dict[int, list[int]] = {}
    for i, t in enumerate(ps.tokens):
        by_len.setdefault(len(t), []).append(i)
    for rows in by_len.values():
        for j in range(0, len(rows), batch_size):
            idx = rows[j : j + batch_size]
            out[idx] = model(torch.stack([ps.tokens[i] for i in idx]))[:, -1].float()
    return out


def summarise(logits: torch.Tensor, ps: PromptSet, name_ids: torch.Tensor) -> dict[str, float]:
    io, s = name_ids[ps.io], name_ids[ps.s]
    rows = torch.arange(len(io))
    ld = logits[rows, io] - logits[rows, s]
    correct = logits.argmax(-1) == io
    held = held_out(ps.io, ps.s)
    return {"n": len(io), "accuracy": float(correct.float().mean()),
            "mean_logit_diff": float(ld.mean()),
            "held_out_n": int(held.sum()),
            "held_out_accuracy": float(correct[held].float().mean()),
            "held_out_mean_logit_diff": float(ld[held].mean())}


def stress_sets(tokenizer, n: int, seed: int) -> list[PromptSet]:
    gen = torch.Generator().manual_seed(seed)
    return [unseen_template_set(tokenizer, n, gen), filler_set(tokenizer, n, gen),
            in_context_set(tokenizer, n, gen)]


def behaviour_metrics(model, *, n: int = 2000, seed: int = 0) -> dict[str, dict[str, float]]:
    """The task's metrics (`sae_bench.models.ioi_tiny.evaluate.ioi_metrics`: all eval prompts,
    held-out pairs, counterfactuals) plus every stress set, `n` prompts each."""
    from sae_bench.models.ioi_tiny.evaluate import ioi_metrics
    from sae_bench.tasks.ioi.dataset import name_token_ids

    metrics = {f"task_{k}": v for k, v in ioi_metrics(model, n=n, seed=seed).items()}
    ids = name_token_ids(model.tokenizer)
    for ps in stress_sets(model.tokenizer, n, seed):
        metrics[ps.name] = summarise(end_logits(model, ps), ps, ids)
    return metrics


def format_behaviour(metrics: dict[str, dict[str, float]]) -> str:
    lines = []
    for k, v in metrics.items():
        line = (f"{k:>22}: n={v['n']:5d}  accuracy={v['accuracy']:.4f}  "
                f"LD={v['mean_logit_diff']:.3f}")
        if "held_out_n" in v:
            line += (f"  | held-out pairs n={v['held_out_n']} accuracy="
                     f"{v['held_out_accuracy']:.4f} LD={v['held_out_mean_logit_diff']:.3f}")
        lines.append(line)
    return "\n".join(lines)
