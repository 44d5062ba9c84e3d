"""Sampling IOI prompts as strings with their labels (no tokenizer involved).

Every random draw goes through one explicit `torch.Generator`, so a seed fixes the whole sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.errors import UserError
from sae_bench.tasks.ioi.vocab import NAMES, OBJECTS, PLACES

PREFIX = "Then, "
# The three templates of the paper. Each has the same token length in GPT-2 and in ioi-tiny's
# tokenizer (tests check both), so a batch needs no padding; S2's position depends on the template.
TEMPLATES = (
    "{A} and {B} had a long and really crazy argument. Afterwards, {C} said to",
    "{A} and {B} had lots of fun at the {place}. {C} gave a {object} to",
    "{A} and {B} were working at the {place}. {C} decided to give a {object} to",
)
POS_VALUES = ("ABB", "BAB")  # ABB: IO first ("A and B ..., B ... to" -> A); BAB: S first.
SPLITS = ("fit", "eval")


@dataclass(frozen=True)
class PromptSpec:
    """Index form of a batch of prompts: names index NAMES, objects OBJECTS, places PLACES."""

    io: torch.Tensor
    s: torch.Tensor
    pos: torch.Tensor  # 0 = ABB, 1 = BAB
    template: torch.Tensor
    obj: torch.Tensor
    place: torch.Tensor

    def replace(self, **kw: torch.Tensor) -> PromptSpec:
        return PromptSpec(**{**self.__dict__, **kw})


def name_pools(split: str) -> tuple[range, range]:
    """(names for IO/S, names for counterfactual edits) of a split, as index ranges into NAMES.

    Eval prompts use the first half of the names and draw counterfactual names from the second
    half, so an edit always introduces a name absent from the prompt and the supervised features
    of the new name are fitted on prompts the scores never see (fit prompts use all names).
    """
    half = len(NAMES) // 2
    if split == "eval":
        return range(0, half), range(half, len(NAMES))
    if split == "fit":
        return range(0, len(NAMES)), range(0, len(NAMES))
    raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}.")


def draw_excluding(gen: torch.Generator, pool: range, exclude: list[torch.Tensor]) -> torch.Tensor:
    """Uniform draws from `pool`, per row avoiding the given (distinct) names in that row."""
    n = exclude[0].shape[0] if exclude else 0
    inside = [e - pool.start for e in exclude if e is not None]
    inside = [torch.where((e >= 0) & (e < len(pool)), e, torch.full_like(e, -1)) for e in inside]
    k = torch.stack(inside, 1) if inside else torch.empty(n, 0, dtype=torch.long)
    k_sorted, _ = k.sort(dim=1)
    n_valid = (k_sorted >= 0).sum(1)
    r = (torch.rand(n, generator=gen) * (len(pool) - n_valid)).long()
    for j in range(k_sorted.shape[1]):  # shift past each excluded index, in ascending order
        ex = k_sorted[:, j]
        r = r + ((ex >= 0) & (r >= ex)).long()
    return r + pool.start


def sample(n: int, split: str, gen: torch.Generator) -> PromptSpec:
    pool, _ = name_pools(split)
    io = torch.randint(len(pool), (n,), generator=gen) + pool.start
    s = draw_excluding(gen, pool, [io])
    return PromptSpec(
        io=io,
        s=s,
        pos=torch.randint(len(POS_VALUES), (n,), generator=gen),
        template=torch.randint(len(TEMPLATES), (n,), generator=gen),
        obj=torch.randint(len(OBJECTS), (n,), generator=gen),
        place=torch.randint(len(PLACES), (n,), generator=gen),
    )


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    # Character offsets of the first letter of each name occurrence.
    first_name: int
    second_name: int
    third_name: int


def render(spec: PromptSpec, i: int) -> RenderedPrompt:
    io, s = NAMES[int(spec.io[i])], NAMES[int(spec.s[i])]
    a, b = (io, s) if int(spec.pos[i]) == 0 else (s, io)
    template = TEMPLATES[int(spec.template[i])]
    fill = {"place": PLACES[int(spec.place[i])], "object": OBJECTS[int(spec.obj[i])]}
    # Render piecewise so the character offsets of the names are known exactly.
    head, rest = template.split("{A}")
    mid, rest = rest.split("{B}")
    before_c, tail = rest.split("{C}")
    text = PREFIX + head
    first = len(text)
    text += a + mid
    second = len(text)
    text += b + before_c.format(**fill)
    third = len(text)
    text += s + tail.format(**fill)
    return RenderedPrompt(text, first, second, third)
