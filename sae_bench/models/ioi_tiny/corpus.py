"""ioi-tiny's training text: IOI-style sentences plus plain filler sentences, one per document.

Three families of templates, sampled with fixed weights (`FAMILY_WEIGHTS`):

- ``task``: the three templates of the IOI task (`sae_bench.tasks.ioi.prompts`), "Then, " prefix
  included, completed with the indirect object: ``... {C} said to {IO}.``
- ``ioi``: other IOI-style templates with different verbs, lengths and structure (some without
  "Then,", one with the answer mid-sentence: ``{C} gave {IO} a {object}.``).
- ``filler``: non-IOI sentences with names, objects and places (general text, so the model is not
  a pure IOI machine and SAEs can be trained on its "general training text").

Names come from all 200 of `NAMES`; objects and places from the task's lists. In IOI templates,
``{C}`` is the subject S and ``{A}``/``{B}`` are IO and S in ABB or BAB order (uniform).

Held-out pairs: about 20% of the unordered name pairs {a, b} (a fixed, symmetric hash of the two
name indices, `held_out`) never co-occur in any training document, so evaluation can report
accuracy on prompts whose (IO, S) pair the model has never seen together.

All randomness comes from an explicit `torch.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.models.ioi_tiny.tokenizer import pieces
from sae_bench.tasks.ioi.prompts import PREFIX, TEMPLATES
from sae_bench.tasks.ioi.vocab import NAMES, OBJECTS, PLACES

TASK_TEMPLATES = tuple(PREFIX + t + " {IO}." for t in TEMPLATES)

IOI_TEMPLATES = (
    "When {A} and {B} went to the {place}, {C} gave a {object} to {IO}.",
    "Then, {A} and {B} went to the {place}. {C} handed the {object} to {IO}.",
    "After {A} and {B} arrived at the {place}, {C} passed the {object} to {IO}.",
    "Then, while {A} and {B} were at the {place}, {C} showed a {object} to {IO}.",
    "Yesterday, {A} and {B} found a {object} at the {place}. {C} gave it to {IO}.",
    "Then, {A} and {B} had a long talk. Afterwards, {C} wrote a letter to {IO}.",
    "Later, {A} and {B} cooked dinner at the {place}. {C} brought a {object} to {IO}.",
    "The {place} was busy, so {A} and {B} left early. {C} sent a {object} to {IO}.",
    "Then, {A} and {B} were playing at the {place}. {C} threw the {object} to {IO}.",
    "Then, {A} and {B} had a big fight at the {place}. Later, {C} said sorry to {IO}.",
    "Then, {A} and {B} met at the {place}. {C} decided to sell a {object} to {IO}.",
    "Then, {A} and {B} went to the {place}. {C} gave {IO} a {object}.",
    "Friends {A} and {B} walked to the {place}. Then {C} gave a {object} to {IO}.",
    "Then, {A} and {B} were reading at the {place}. {C} lent a {object} to {IO}.",
    "While {A} and {B} were eating at the {place}, {C} offered a {object} to {IO}.",
)

# Filler: {A}, {B}, {C} are three distinct names with no held-out pair among them.
FILLER_TEMPLATES = (
    "Today, {A} bought a {object} at the {place}.",
    "The {object} was left at the {place}.",
    "Then, {A} went to the {place} with {B}.",
    "Yesterday, {A} and {B} walked to the {place}.",
    "Then, {A} said that the {place} was very nice.",
    "Later, {A} put the {object} next to the {object2}.",
    "The {place} had a {object} and a {object2}.",
    "Then, {A} and {B} had a long and really crazy argument.",
    "At the {place}, {A} met {B} and {C}.",
    "Then, {A} took the {object} to the {place}.",
    "Later, {A} and {B} were working at the {place}.",
    "The {object} belongs to {A}, not {B}.",
    "When {A} was at the {place}, {A} found a {object}.",
    "Then, {A} asked {B} about the {object}.",
)

FAMILIES = ("task", "ioi", "filler")
FAMILY_WEIGHTS = (0.4, 0.35, 0.25)
_FAMILY_TEMPLATES = {"task": TASK_TEMPLATES, "ioi": IOI_TEMPLATES, "filler": FILLER_TEMPLATES}

HELD_OUT_MODULUS = 5  # one pair in five is held out


@dataclass(frozen=True)
class Document:
    """One training document. `answer_start` is the character offset of the IO name in IOI
    documents (the token the loss may upweight), None for filler."""

    text: str
    family: str
    answer_start: int | None

    @property
    def answer_starts(self) -> tuple[int, ...]:
        """The shape the shared training loop reads (ioi-circuit documents have several)."""
        return () if self.answer_start is None else (self.answer_start,)


def held_out(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Whether the unordered name pairs {a[i], b[i]} are held out of training. [n] bool.

    A fixed integer hash of (min, max) of the two indices into `NAMES`: symmetric, deterministic,
    about 1 / `HELD_OUT_MODULUS` of pairs, and spread evenly over names. A name is never held out
    with itself.
    """
    a, b = torch.as_tensor(a, dtype=torch.long), torch.as_tensor(b, dtype=torch.long)
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    x = lo * 1009 + hi
    # Two multiply-xorshift rounds (constants from Murmur3's finalizer); values stay < 2**63.
    for mult, shift in ((0x85EBCA6B, 16), (0xC2B2AE35, 13)):
        x = (x * mult) % (1 << 32)
        x = x ^ (x >> shift)
    return (x % HELD_OUT_MODULUS == 0) & (a != b)


def is_held_out(a: int | str, b: int | str) -> bool:
    """`held_out` for one pair, given as indices into `NAMES` or as names (no leading space)."""
    ia = NAMES.index(a) if isinstance(a, str) else a
    ib = NAMES.index(b) if isinstance(b, str) else b
    return bool(held_out(torch.tensor([ia]), torch.tensor([ib]))[0])


def _distinct_allowed(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """[n, k] name indices, distinct within a row and with no held-out pair (rejection sampling)."""
    names = torch.randint(len(NAMES), (n, k), generator=gen)
    for j in range(1, k):
        while True:
            bad = torch.zeros(n, dtype=torch.bool)
            for i in range(j):
                bad |= (names[:, j] == names[:, i]) | held_out(names[:, j], names[:, i])
            if not bad.any():
                break
            names[bad, j] = torch.randint(len(NAMES), (int(bad.sum()),), generator=gen)
    return names


def _render(template: str, fill: dict[str, str]) -> tuple[str, int | None]:
    """The filled template and the character offset of the {IO} name (None if it has none)."""
    if "{IO}" not in template:
        return template.format(**fill), None
    before, after = template.split("{IO}")
    head = before.format(**fill)
    return head + fill["IO"] + after.format(**fill), len(head)


def sample_documents(n: int, gen: torch.Generator) -> list[Document]:
    """`n` documents drawn i.i.d. from the corpus distribution, using only `gen`."""
    family = torch.multinomial(torch.tensor(FAMILY_WEIGHTS), n, replacement=True, generator=gen)
    template = torch.rand(n, generator=gen)
    names = _distinct_allowed(n, 3, gen)
    pos = torch.randint(2, (n,), generator=gen)  # 0 = ABB (IO first), 1 = BAB
    objs = torch.randint(len(OBJECTS), (n, 2), generator=gen)
    place = torch.randint(len(PLACES), (n,), generator=gen)

    docs = []
    for i in range(n):
        fam = FAMILIES[int(family[i])]
        templates = _FAMILY_TEMPLATES[fam]
        t = templates[min(int(template[i] * len(templates)), len(templates) - 1)]
        n1, n2, n3 = (NAMES[int(j)] for j in names[i])
        fill = {"place": PLACES[int(place[i])], "object": OBJECTS[int(objs[i, 0])],
                "object2": OBJECTS[int(objs[i, 1])]}
        if fam == "filler":
            fill.update(A=n1, B=n2, C=n3)
        else:
            io, s = n1, n2
            a, b = (io, s) if int(pos[i]) == 0 else (s, io)
            fill.update(A=a, B=b, C=s, IO=io)
        text, answer = _render(t, fill)
        docs.append(Document(text, fam, answer))
    return docs


def vocabulary() -> list[str]:
    """Every token the corpus can produce, in a fixed order: names, objects, places (each with a
    leading space), then template words and punctuation in first-seen order."""
    words = [" " + w for w in (*NAMES, *OBJECTS, *PLACES)]
    for template in (*TASK_TEMPLATES, *IOI_TEMPLATES, *FILLER_TEMPLATES):
        for key in ("{A}", "{B}", "{C}", "{IO}", "{place}", "{object2}", "{object}"):
            template = template.replace(key, "\n")  # a break, so words never merge
        words.extend(pieces(template))
    return list(dict.fromkeys(words))
