"""Build IOI `TaskData` for a model's tokenizer: tokens, answers, role positions, counterfactuals.

Role positions are derived from the tokenizer's character offsets and then asserted against the
name tokens, never hard-coded, so the same code serves GPT-2's BPE and ioi-tiny's word tokenizer.
"""

from __future__ import annotations

import zlib

import torch

from sae_bench.errors import UserError
from sae_bench.tasks.base import Attribute, Counterfactual, TaskData
from sae_bench.tasks.ioi.prompts import POS_VALUES, PromptSpec, draw_excluding, name_pools, render
from sae_bench.tasks.ioi.prompts import sample as sample_specs
from sae_bench.tasks.ioi.vocab import NAMES

ROLES = ("IO", "S1", "S1+1", "S2", "END")
EDITABLE = ("IO", "S", "Pos")


def name_token_ids(tokenizer) -> torch.Tensor:
    """Token id of " Name" for every name; every name must be a single token."""
    ids = []
    for name in NAMES:
        toks = tokenizer.encode(" " + name, add_special_tokens=False)
        if len(toks) != 1:
            raise UserError(
                f"the IOI task needs single-token names, but this model's tokenizer splits "
                f"{' ' + name!r} into {len(toks)} tokens; use a GPT-2-vocabulary model or ioi-tiny."
            )
        ids.append(toks[0])
    return torch.tensor(ids)


def _tokenize(tokenizer, prepend_bos: bool, spec: PromptSpec):
    """Tokens [n, seq], role positions {role: [n]} and prompt strings for a spec."""
    rendered = [render(spec, i) for i in range(len(spec.io))]
    enc = tokenizer(
        [r.text for r in rendered], add_special_tokens=False, return_offsets_mapping=True
    )
    lengths = {len(ids) for ids in enc["input_ids"]}
    if len(lengths) != 1:
        raise UserError(
            f"IOI templates tokenize to unequal lengths {sorted(lengths)} with this tokenizer; "
            "the task needs one length per batch. Use a GPT-2-vocabulary model or ioi-tiny."
        )
    tokens = torch.tensor(enc["input_ids"])
    offset = 0
    if prepend_bos:
        if tokenizer.bos_token_id is None:
            raise UserError("the model prepends BOS but its tokenizer has no bos_token_id; set "
                            "one, or use a model whose tokenizer has it.")
        tokens = torch.cat([torch.full((len(tokens), 1), tokenizer.bos_token_id), tokens], 1)
        offset = 1

    def token_at(char_offsets: list[tuple[int, int]], char: int) -> int:
        for t, (start, end) in enumerate(char_offsets):
            if start <= char < end:
                return t + offset
        raise AssertionError(f"no token covers character {char}")

    pairs = list(zip(enc["offset_mapping"], rendered, strict=True))
    first, second, third = (
        torch.tensor([token_at(o, getattr(r, attr)) for o, r in pairs])
        for attr in ("first_name", "second_name", "third_name")
    )
    abb = spec.pos == 0
    io_pos = torch.where(abb, first, second)
    s1_pos = torch.where(abb, second, first)
    positions = {
        "IO": io_pos,
        "S1": s1_pos,
        "S1+1": s1_pos + 1,
        "S2": third,
        "END": torch.full_like(third, tokens.shape[1] - 1),
    }
    return tokens, positions, tuple(r.text for r in rendered)


def _check_positions(tokens, positions, io_ids, s_ids) -> None:
    """Derived positions must land on the name tokens; anything else is a bug, not bad input."""
    rows = torch.arange(len(tokens))
    assert torch.equal(tokens[rows, positions["IO"]], io_ids), "IO position is not the IO token"
    assert torch.equal(tokens[rows, positions["S1"]], s_ids), "S1 position is not the S token"
    assert torch.equal(tokens[rows, positions["S2"]], s_ids), "S2 position is not the S token"
    assert bool((positions["S1"] < positions["S2"]).all()), "S1 must precede S2"
    assert bool((positions["IO"] < positions["S2"]).all()), "IO must precede S2"


def split_generator(seed: int, split: str) -> torch.Generator:
    """Independent streams per split: the same seed must not give fit and eval prompts that share
    their template/Pos/object draws index by index."""
    return torch.Generator().manual_seed(zlib.crc32(f"ioi:{split}:{seed}".encode()))


def build(
    model,
    *,
    n: int,
    seed: int,
    split: str,
    task: str,
    version: str,
    counterfactuals: bool = True,
) -> TaskData:
    """Sample `n` prompts of `split` with `seed` and tokenize them for `model`.

    Counterfactuals: IO edit (new IO name), S edit (both S tokens replaced), Pos flip (the first
    two names swapped; the answer stays the same name). New names come from the split's
    counterfactual pool and never appear in the prompt.
    """
    if n < 1:
        raise UserError(f"need at least one prompt, got n={n}; ask for n >= 1 prompts.")
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise UserError("the IOI task needs a model with a tokenizer; load the model with its "
                        "tokenizer.")
    prepend_bos = bool(model.cfg.default_prepend_bos)
    gen = split_generator(seed, split)
    spec = sample_specs(n, split, gen)
    _, cf_pool = name_pools(split)
    new_io = draw_excluding(gen, cf_pool, [spec.io, spec.s])
    new_s = draw_excluding(gen, cf_pool, [spec.io, spec.s])

    ids = name_token_ids(tokenizer)
    tokens, positions, prompts = _tokenize(tokenizer, prepend_bos, spec)
    _check_positions(tokens, positions, ids[spec.io], ids[spec.s])

    edits = {
        "IO": (spec.replace(io=new_io), spec.io, new_io),
        "S": (spec.replace(s=new_s), spec.s, new_s),
        "Pos": (spec.replace(pos=1 - spec.pos), spec.pos, 1 - spec.pos),
    }
    cfs = {}
    for attr, (cf_spec, source, target) in (edits.items() if counterfactuals else ()):
        cf_tokens, cf_positions, cf_prompts = _tokenize(tokenizer, prepend_bos, cf_spec)
        if cf_tokens.shape != tokens.shape:
            raise UserError(
                f"the {attr} counterfactual tokenizes to a different length than the base prompt; "
                "the task needs single-token names, objects and places."
            )
        _check_positions(cf_tokens, cf_positions, ids[cf_spec.io], ids[cf_spec.s])
        cfs[attr] = Counterfactual(
            edited=attr,
            tokens=cf_tokens,
            positions=cf_positions,
            source=source,
            target=target,
            prompts=cf_prompts,
        )

    return TaskData(
        task=task,
        version=version,
        split=split,
        seed=seed,
        prompts=prompts,
        tokens=tokens,
        answer_ids=ids[spec.io],
        distractor_ids=ids[spec.s],
        attributes={
            "IO": Attribute("IO", NAMES, spec.io),
            "S": Attribute("S", NAMES, spec.s),
            "Pos": Attribute("Pos", POS_VALUES, spec.pos),
        },
        positions=positions,
        counterfactuals=cfs,
    )
