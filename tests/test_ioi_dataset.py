"""The IOI prompt distribution: labels, positions, counterfactuals, splits, seeds."""

from __future__ import annotations

import re

import pytest
import torch

from sae_bench.errors import UserError
from sae_bench.tasks import get_task
from sae_bench.tasks.ioi.prompts import PREFIX, TEMPLATES, draw_excluding
from sae_bench.tasks.ioi.vocab import NAMES, OBJECTS, PLACES

TASK = get_task("ioi")


@pytest.fixture(scope="module")
def data(small_gpt2_vocab_model):
    return TASK.build(small_gpt2_vocab_model, n=600, seed=3, split="eval")


def test_vocab_entries_are_single_gpt2_tokens(gpt2_tok):
    for words in (NAMES, OBJECTS, PLACES):
        for w in words:
            assert len(gpt2_tok.encode(" " + w)) == 1, w
    assert len(set(NAMES)) == len(NAMES) >= 200
    assert len(set(OBJECTS)) == len(OBJECTS) >= 150
    assert len(set(PLACES)) == len(PLACES) >= 75


def test_templates_have_equal_gpt2_length(gpt2_tok):
    lengths = {
        len(gpt2_tok.encode(PREFIX + t.format(A="Mary", B="John", C="John", place="store",
                                              object="drink")))
        for t in TEMPLATES
    }
    assert len(lengths) == 1


def test_labels_match_prompt_text(data):
    for p in range(len(data)):
        text = data.prompts[p]
        io, s = data.attributes["IO"].value_of(p), data.attributes["S"].value_of(p)
        pos = data.attributes["Pos"].value_of(p)
        first, second = text[len(PREFIX):].split(" and ")[0], text.split(" and ")[1].split()[0]
        assert (first, second) == ((io, s) if pos == "ABB" else (s, io))
        assert len(re.findall(rf"\b{s}\b", text)) == 2  # S twice, IO once
        assert len(re.findall(rf"\b{io}\b", text)) == 1
        assert text.endswith(" to")


def test_positions_point_at_role_tokens(data, gpt2_tok):
    rows = torch.arange(len(data))
    toks = data.tokens
    assert (toks[:, 0] == gpt2_tok.bos_token_id).all()
    assert torch.equal(toks[rows, data.positions["IO"]], data.answer_ids)
    assert torch.equal(toks[rows, data.positions["S1"]], data.distractor_ids)
    assert torch.equal(toks[rows, data.positions["S2"]], data.distractor_ids)
    assert torch.equal(data.positions["S1+1"], data.positions["S1"] + 1)
    assert (data.positions["END"] == toks.shape[1] - 1).all()
    # " to" is the last token; the IO-first (ABB) prompts have IO right after "Then,".
    abb = data.attributes["Pos"].labels == 0
    assert (data.positions["IO"][abb] == 3).all() and (data.positions["S1"][~abb] == 3).all()
    for p in torch.nonzero(~abb).flatten()[:5].tolist():  # S first: the token after S1 is " and"
        assert gpt2_tok.decode(toks[p, data.positions["S1+1"][p]]) == " and"


def test_answers_are_names(data, gpt2_tok):
    for p in range(10):
        assert gpt2_tok.decode(data.answer_ids[p]) == " " + data.attributes["IO"].value_of(p)
        assert gpt2_tok.decode(data.distractor_ids[p]) == " " + data.attributes["S"].value_of(p)


def test_counterfactuals_change_exactly_one_attribute(data):
    n_names = len(NAMES)
    io, s, pos = (data.attributes[a].labels for a in ("IO", "S", "Pos"))
    cf = data.counterfactuals["IO"]
    assert torch.equal(cf.source, io)
    assert not (cf.target == io).any() and not (cf.target == s).any()
    assert (cf.target >= n_names // 2).all(), "eval counterfactual names come from the 2nd half"
    assert torch.equal(cf.tokens[:, data.positions["S2"][0] + 1 :],
                       data.tokens[:, data.positions["S2"][0] + 1 :])
    diff = (cf.tokens != data.tokens).sum(1)
    assert (diff == 1).all(), "an IO edit changes one token"

    cf = data.counterfactuals["S"]
    assert torch.equal(cf.source, s) and not (cf.target == io).any()
    assert ((cf.tokens != data.tokens).sum(1) == 2).all(), "an S edit changes both S tokens"
    rows = torch.arange(len(data))
    assert torch.equal(cf.tokens[rows, cf.positions["IO"]], data.answer_ids)

    cf = data.counterfactuals["Pos"]
    assert torch.equal(cf.target, 1 - pos)
    assert torch.equal(cf.positions["IO"], data.positions["S1"])
    assert torch.equal(cf.positions["S1"], data.positions["IO"])
    assert torch.equal(cf.tokens[rows, cf.positions["IO"]], data.answer_ids)
    for p in range(5):
        assert cf.prompts[p].endswith(data.prompts[p].split(".")[-1])


def test_eval_split_uses_first_half_of_names(data):
    half = len(NAMES) // 2
    assert (data.attributes["IO"].labels < half).all()
    assert (data.attributes["S"].labels < half).all()
    assert not (data.attributes["IO"].labels == data.attributes["S"].labels).any()


def test_fit_split_covers_all_names(small_gpt2_vocab_model):
    fit = TASK.build(small_gpt2_vocab_model, n=4000, seed=0, split="fit", counterfactuals=False)
    assert fit.counterfactuals == {}
    assert set(fit.attributes["IO"].labels.tolist()) == set(range(len(NAMES)))
    assert set(fit.attributes["S"].labels.tolist()) == set(range(len(NAMES)))


def test_attributes_are_balanced_and_independent(small_gpt2_vocab_model):
    d = TASK.build(small_gpt2_vocab_model, n=4000, seed=1, split="eval", counterfactuals=False)
    pos = d.attributes["Pos"].labels.float()
    assert abs(pos.mean() - 0.5) < 0.05
    io = d.attributes["IO"].labels
    # IO name is independent of Pos: the share of BAB prompts is the same for low and high names.
    low = io < 50
    assert abs(pos[low].mean() - pos[~low].mean()) < 0.06
    markers = ("crazy argument", "lots of fun", "were working")  # one phrase per template
    assert all(m in t for m, t in zip(markers, TEMPLATES, strict=True))
    tmpl = torch.tensor([next(i for i, m in enumerate(markers) if m in p) for p in d.prompts])
    assert torch.bincount(tmpl).min() > 4000 / 3 * 0.85


def test_same_seed_same_data_different_seed_different(small_gpt2_vocab_model):
    a = TASK.build(small_gpt2_vocab_model, n=50, seed=7)
    b = TASK.build(small_gpt2_vocab_model, n=50, seed=7)
    c = TASK.build(small_gpt2_vocab_model, n=50, seed=8)
    assert a.prompts == b.prompts and torch.equal(a.tokens, b.tokens)
    assert torch.equal(a.counterfactuals["IO"].tokens, b.counterfactuals["IO"].tokens)
    assert a.prompts != c.prompts
    assert len(set(a.prompts)) == 50, "prompts are diverse"


def test_fit_and_eval_streams_are_independent(small_gpt2_vocab_model):
    fit = TASK.build(small_gpt2_vocab_model, n=400, seed=0, split="fit", counterfactuals=False)
    ev = TASK.build(small_gpt2_vocab_model, n=400, seed=0, split="eval", counterfactuals=False)
    same = (fit.attributes["Pos"].labels == ev.attributes["Pos"].labels).float().mean()
    assert 0.35 < same < 0.65


def test_draw_excluding_is_uniform_and_avoids():
    gen = torch.Generator().manual_seed(0)
    ex1 = torch.full((20000,), 3)
    ex2 = torch.full((20000,), 7)
    r = draw_excluding(gen, range(0, 10), [ex2, ex1])
    counts = torch.bincount(r, minlength=10)
    assert counts[3] == 0 and counts[7] == 0
    assert counts[[0, 1, 2, 4, 5, 6, 8, 9]].min() > 2200


def test_bad_requests_are_user_errors(small_gpt2_vocab_model):
    with pytest.raises(UserError, match="unknown split"):
        TASK.build(small_gpt2_vocab_model, n=5, seed=0, split="test")
    with pytest.raises(UserError, match="at least one prompt"):
        TASK.build(small_gpt2_vocab_model, n=0, seed=0)
    with pytest.raises(UserError, match="unknown task 'iio'. Did you mean 'ioi'"):
        get_task("iio")
