"""ioi-circuit's training text: multi-sentence documents in which shortcuts to IOI fail.

ioi-tiny learned "the first two names minus the subject" from one-sentence documents with fixed
token offsets. Here a document (up to `n_ctx` tokens) mixes, in random order:

- IOI *episodes*: an optional lead-in ("Then,", "Later,", ...), an opening clause with a pair of
  names (``{A} and {B} went to the {place}.``), a closing clause whose subject repeats one of them
  (``{C} gave a {object} to``), then the indirect object. Openings and closings combine freely, so
  the task's three templates are three of ~250 combinations; a few openings and closings are
  kept out of every episode (`HELD_OUT_OPENINGS`, `HELD_OUT_CLOSINGS`) to test unseen templates.
- distractor sentences with names that are *not* IOI (``{A} saw {B} at the {place}.``,
  ``When {A} was at the {place}, {A} found a {object}.``).

Names of a document come from a small cast, so a name often recurs across sentences: the IO of
one episode may be the S of another or sit in a distractor, so "the name seen once", "the first
name of the document" or "the names at fixed offsets" are all wrong; only the episode's own
structure (which name of the *current* pair is repeated by the closing) identifies the answer.
Filler words (`FILLERS`) are inserted at random points of an episode (not between END and the
answer), so names sit at every absolute position and the gap between S1 and S2 varies.

Held-out name pairs follow ioi-tiny's rule (`sae_bench.models.ioi_tiny.corpus.held_out`): they never
co-occur in a document. All randomness comes from one explicit `torch.Generator`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from sae_bench.models.ioi_circuit.templates import (
    CLOSINGS,
    CROWD_SENTENCES,
    DISTRACTOR_TEMPLATES,
    FILLERS,
    HELD_OUT_CLOSINGS,
    HELD_OUT_OPENINGS,
    LEAD_INS,
    OPENINGS,
    ROLE_WORDS,
    ROLL_CALL_FRAMES,
    S_MIDDLES,
    SELF_CLOSINGS,
    TASK_CLOSINGS,
    TASK_OPENINGS,
    THIRD_NAME_CLOSINGS,
    THIRD_NAME_OPENINGS,
    VARIED_OPENINGS,
)
from sae_bench.models.ioi_tiny.corpus import _distinct_allowed
from sae_bench.models.ioi_tiny.tokenizer import pieces
from sae_bench.tasks.ioi.prompts import PREFIX, TEMPLATES
from sae_bench.tasks.ioi.vocab import NAMES, OBJECTS, PLACES

_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Document:
    """One training document. `answer_starts`: character offsets of every episode's answer (the
    tokens the loss upweights)."""

    text: str
    family: str
    answer_starts: tuple[int, ...]

    @property
    def answer_start(self) -> int | None:
        return self.answer_starts[0] if self.answer_starts else None


def template_pieces(template: str, fill: dict[str, str]) -> tuple[list[str], dict[str, int]]:
    """Token pieces of a filled template and the piece index of each name slot.

    Literal text is split by the tokenizer's pre-tokenizer (spaces before slots drop out); each
    slot becomes the pieces of " value" (one for a name). Returns (pieces, {slot: index of its
    first occurrence}).
    """
    out: list[str] = []
    where: dict[str, int] = {}
    last = 0
    for m in _SLOT.finditer(template):
        out += pieces(template[last : m.start()])
        where.setdefault(m.group(1), len(out))
        out += pieces(" " + fill[m.group(1)])
        last = m.end()
    out += pieces(template[last:])
    return out, where


@dataclass(frozen=True)
class Episode:
    """An IOI episode as pieces, with the piece indices of its roles."""

    pieces: list[str]
    io: int  # IO in the opening
    s1: int
    s2: int
    end: int  # the last piece before the answer
    answer: int  # the answer piece (IO repeated); end + 1


def episode(lead_in: str, opening: str, closing: str, io: str, s: str, abb: bool,
            fill: dict[str, str], subject: str | None = None,
            middles: tuple[str, ...] = (), answer: str | None = None,
            before: tuple[str, ...] = ()) -> Episode:
    """Assemble lead-in + before + opening + middles + closing; {A}, {B} = (IO, S) if `abb`
    else (S, IO). The closing's subject {C} is S, or the words `subject` (e.g. "the former")
    when given; `s2` then indexes their first piece. `middles` (S_MIDDLES, CROWD_SENTENCES)
    go between opening and closing, `before` (CROWD_SENTENCES) between lead-in and opening;
    both are filled with `fill` and {C} = S. `answer`: the name in the closing's {IO} slot
    (default IO; S for SELF_CLOSINGS)."""
    a, b = (io, s) if abb else (s, io)
    head = pieces(lead_in)
    for sentence in before:
        head = head + template_pieces(sentence, {**fill, "C": s})[0]
    op, op_at = template_pieces(opening, {**fill, "A": a, "B": b})
    for middle in middles:
        op = op + template_pieces(middle, {**fill, "C": s})[0]
    cl, cl_at = template_pieces(closing, {**fill, "C": subject or s, "IO": answer or io})
    first, second = len(head) + op_at["A"], len(head) + op_at["B"]
    base = len(head) + len(op)
    answer_at = base + cl_at["IO"]
    return Episode(head + op + cl, first if abb else second, second if abb else first,
                   base + cl_at["C"], answer_at - 1, answer_at)


def insert_fillers(ep: Episode, slots: list[int], words: list[str]) -> Episode:
    """Insert `words[i]` before piece `slots[i]` (slot ≤ ep.end: never between END and the answer)
    and shift the role indices."""
    out = list(ep.pieces)
    shift = {k: getattr(ep, k) for k in ("io", "s1", "s2", "end", "answer")}
    for slot, word in sorted(zip(slots, words, strict=True), reverse=True):
        out.insert(slot, word)
        for k, v in shift.items():
            if v >= slot:
                shift[k] = v + 1
    return Episode(out, **shift)


class _Draw:
    """Small integer/uniform draws from one generator (all randomness goes through it)."""

    def __init__(self, gen: torch.Generator):
        self.gen = gen

    def int(self, n: int) -> int:
        return int(torch.randint(n, (1,), generator=self.gen))

    def pick(self, seq):
        return seq[self.int(len(seq))]

    def coin(self, p: float) -> bool:
        return float(torch.rand(1, generator=self.gen)) < p


def roll_call_episode(draw: _Draw, lead_in: str, closing: str, fill: dict[str, str],
                      echo: float = 0.0) -> Episode:
    """An episode with no opening (`Mix.roll_call`): lead-in, then a shuffled run of
    ROLL_CALL_FRAMES sentences naming IO (`fill["A"]`) once, S (`fill["B"]`) once, D two or
    three times and, half the time, E two or three times; then the closing with {C} = S.
    `io` / `s1` index IO's and S's body mentions; `abb` order is whichever the shuffle gives.
    With chance `echo` a repeated name's later sentence repeats its first one word for word, so
    the words after a repeat are predicted by looking back at the name's first mention."""
    io, s = fill["A"], fill["B"]
    mentions = [io, s] + [fill["D"]] * (2 + draw.int(2))
    if "E" in fill and draw.coin(0.5):
        mentions += [fill["E"]] * (2 + draw.int(2))
    order = torch.randperm(len(mentions), generator=draw.gen).tolist()
    out = pieces(lead_in)
    where: dict[str, int] = {}
    first: dict[str, tuple[list[str], dict[str, int]]] = {}
    for name in (mentions[i] for i in order):
        if name in first and echo > 0 and draw.coin(echo):  # no draw when off
            sentence, at = first[name]
        else:
            frame = {"X": name, "place": draw.pick(PLACES), "object": draw.pick(OBJECTS)}
            sentence, at = template_pieces(draw.pick(ROLL_CALL_FRAMES), frame)
        first.setdefault(name, (sentence, at))
        where.setdefault(name, len(out) + at["X"])
        out += sentence
    cl, cl_at = template_pieces(closing, {**fill, "C": s, "IO": io})
    answer_at = len(out) + cl_at["IO"]
    return Episode(out + cl, where[io], where[s], len(out) + cl_at["C"], answer_at - 1, answer_at)


@dataclass(frozen=True)
class Mix:
    """The corpus's proportions (recorded in the recipe through the train config)."""

    cast: int = 6  # names per document, so names recur across its sentences
    task_exact: float = 0.15  # documents that open with an exact task prompt (no fillers)
    distractor: float = 0.4  # chance that the next sentence is a distractor, not an episode
    max_fillers: int = 8  # fillers per episode, uniform in 0..max_fillers
    single: bool = False  # one episode per document and nothing else
    third_name: float = 0.5  # chance that an episode's opening / closing has a third name
    role_words: float = 0.0  # chance that the closing names S by its slot ("the former")
    s_repeats: float = 0.0  # chance of each of two S_MIDDLES sentences inside an episode
    self_closings: float = 0.0  # chance that the closing is a SELF_CLOSINGS one (answer S)
    crowd: float = 0.0  # chance that an episode has two CROWD_SENTENCES (D and E twice each)
    varied_pairs: float = 0.0  # chance that the opening is a VARIED_OPENINGS one
    roll_call: float = 0.0  # chance that an episode has no opening (`roll_call_episode`)
    echo: float = 0.0  # chance that a roll call's repeat sentence copies the name's first one

    def __post_init__(self):
        for option in ("crowd", "roll_call"):  # both name D and E besides IO and S
            if getattr(self, option) > 0 and self.cast < 5:
                raise ValueError(f"{option} episodes need a cast of 5 or more names, "
                                 f"not {self.cast}")
        if self.echo > 0 and self.roll_call == 0:
            raise ValueError("echo repeats roll-call sentences: set roll_call above 0 too")


# The curriculum's first phase: one clean episode per document, names at nearly fixed offsets.
# A model learns to copy names there within ~1000 steps; on the full mix from scratch it had
# learned nothing name-specific after 1500 steps (every name equally likely at END).
SIMPLE = Mix(cast=4, task_exact=0.3, distractor=0.0, max_fillers=0, single=True, third_name=0.0)


def _fill(draw: _Draw, cast: list[str]) -> dict[str, str]:
    # Slicing five instead of four draws nothing more, so older recipes sample the same text.
    names = [cast[i] for i in torch.randperm(len(cast), generator=draw.gen)[:5].tolist()]
    return {"A": names[0], "B": names[1], "C": names[2], "D": names[3],
            **({"E": names[4]} if len(names) > 4 else {}),  # a cast of 4 (SIMPLE) has no E
            "place": draw.pick(PLACES), "object": draw.pick(OBJECTS),
            "object2": draw.pick(OBJECTS)}


def _with_fillers(draw: _Draw, ep: Episode, max_fillers: int) -> Episode:
    """`ep` with 0..max_fillers FILLERS inserted at random points up to END."""
    k = draw.int(max_fillers + 1)
    slots = [draw.int(ep.end + 1) for _ in range(k)]
    return insert_fillers(ep, slots, [draw.pick(FILLERS) for _ in range(k)])


def _document(draw: _Draw, cast: list[str], n_ctx: int, mix: Mix) -> Document:
    budget = n_ctx - 2  # <bos> and <eos>
    sentences: list[tuple[list[str], int | None]] = []  # (pieces, answer piece index)
    used = 0
    if draw.coin(mix.task_exact):
        t = draw.int(len(TEMPLATES))
        f = _fill(draw, cast)
        ep = episode(PREFIX.strip(), TASK_OPENINGS[t], TASK_CLOSINGS[t] + " {IO}.", f["A"],
                     f["B"], draw.coin(0.5), f)
        sentences.append((ep.pieces, ep.answer))
        used = len(ep.pieces)
    while not (mix.single and sentences):
        f = _fill(draw, cast)
        if draw.coin(mix.distractor):
            piece_list, answer = template_pieces(draw.pick(DISTRACTOR_TEMPLATES), f)[0], None
        elif mix.roll_call > 0 and draw.coin(mix.roll_call):  # no draw when off
            ep = roll_call_episode(draw, draw.pick(LEAD_INS), draw.pick(CLOSINGS), f,
                                   echo=mix.echo)
            # Fewer fillers: the body is long already.
            ep = _with_fillers(draw, ep, mix.max_fillers // 2)
            piece_list, answer = ep.pieces, ep.answer
        else:
            opening = draw.pick(THIRD_NAME_OPENINGS if draw.coin(mix.third_name) else OPENINGS)
            if mix.varied_pairs > 0 and draw.coin(mix.varied_pairs):  # no draw when off
                opening = draw.pick(VARIED_OPENINGS)
            closing = draw.pick(THIRD_NAME_CLOSINGS if draw.coin(mix.third_name) else CLOSINGS)
            abb = draw.coin(0.5)
            subject = None
            if mix.role_words > 0 and draw.coin(mix.role_words):  # no draw when off
                subject = ROLE_WORDS[1] if abb else ROLE_WORDS[0]  # S is the pair's 2nd / 1st
            middles: tuple[str, ...] = ()
            if mix.s_repeats > 0:  # no draw when off, so older recipes sample the same text
                middles = tuple(draw.pick(S_MIDDLES) for _ in range(2) if draw.coin(mix.s_repeats))
            before: tuple[str, ...] = ()
            if mix.crowd > 0 and draw.coin(mix.crowd):  # no draw when off
                # Each of the two sentences goes before the opening or among the middles.
                for _ in range(2):
                    sentence = draw.pick(CROWD_SENTENCES)
                    if draw.coin(0.5):
                        before += (sentence,)
                    else:
                        middles += (sentence,)
            answer_name = None
            if mix.self_closings > 0 and draw.coin(mix.self_closings):  # no draw when off
                closing, answer_name = draw.pick(SELF_CLOSINGS), f["B"]  # S is f["B"]
            ep = episode(draw.pick(LEAD_INS), opening, closing, f["A"], f["B"], abb, f,
                         subject=subject, middles=middles, answer=answer_name, before=before)
            ep = _with_fillers(draw, ep, mix.max_fillers)
            piece_list, answer = ep.pieces, ep.answer
        if used + len(piece_list) > budget:
            break
        sentences.append((piece_list, answer))
        used += len(piece_list)
    text, starts = "", []
    for piece_list, answer in sentences:
        for j, piece in enumerate(spaced(piece_list, first=not text)):
            if j == answer:
                starts.append(len(text))
            text += piece
    return Document(text, "episodes", tuple(starts))


def spaced(piece_list: list[str], *, first: bool) -> list[str]:
    """Give every word a leading space, except a document's very first piece: joining clauses
    and inserting fillers must not glue two words into one (unknown) token."""
    return [p if (j == 0 and first) or not p[0].isalpha() else " " + p
            for j, p in enumerate(piece_list)]


def sample_documents(n: int, gen: torch.Generator, *, n_ctx: int = 64,
                     mix: Mix = Mix()) -> list[Document]:
    """`n` documents drawn i.i.d., each at most `n_ctx` tokens with <bos> and <eos>."""
    casts = _distinct_allowed(n, mix.cast, gen)
    draw = _Draw(gen)
    return [_document(draw, [NAMES[int(j)] for j in casts[i]], n_ctx, mix) for i in range(n)]


def vocabulary(role_words: bool = True, s_middles: bool = False,
               self_closings: bool = False, crowd: bool = False,
               varied_pairs: bool = False, roll_call: bool = False) -> list[str]:
    """Every token the corpus (and the stress prompts) can produce, in a fixed order: names,
    objects, places (leading space), fillers, then template words in first-seen order, each word
    also with a leading space (a sentence-initial word follows the previous sentence).
    `role_words`: include "the former" / "the latter" (only a mix that uses them needs them);
    `s_middles`, `self_closings`, `crowd`, `varied_pairs`, `roll_call`: the words of S_MIDDLES,
    SELF_CLOSINGS, CROWD_SENTENCES, VARIED_OPENINGS, ROLL_CALL_FRAMES (likewise)."""
    words = [" " + w for w in (*NAMES, *OBJECTS, *PLACES)] + list(FILLERS)
    templates = (*OPENINGS, *CLOSINGS, *THIRD_NAME_OPENINGS, *THIRD_NAME_CLOSINGS,
                 *HELD_OUT_OPENINGS, *HELD_OUT_CLOSINGS, *LEAD_INS, *DISTRACTOR_TEMPLATES,
                 *(ROLE_WORDS if role_words else ()), *(S_MIDDLES if s_middles else ()),
                 *(SELF_CLOSINGS if self_closings else ()),
                 *(CROWD_SENTENCES if crowd else ()),
                 *(VARIED_OPENINGS if varied_pairs else ()),
                 *(ROLL_CALL_FRAMES if roll_call else ()))
    for template in templates:
        for piece in pieces(_SLOT.sub("\n", template)):  # a break, so words never merge
            words.append(piece)
            if not piece.startswith(" ") and piece[0].isalpha():
                words.append(" " + piece)
    return list(dict.fromkeys(words))
