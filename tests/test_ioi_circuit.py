"""ioi-circuit: corpus, stress prompts, training determinism, shipped model's floors."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re

import pytest
import torch
from helpers import assert_training_deterministic_per_seed, recipe_flags

from sae_bench.models.ioi_circuit import behaviour, corpus
from sae_bench.models.ioi_circuit.model import RETRAIN_COMMAND, asset_dir, load, load_from
from sae_bench.models.ioi_circuit.train import TrainConfig, corpus_spec, main, train_raw
from sae_bench.models.ioi_tiny.corpus import is_held_out
from sae_bench.models.ioi_tiny.model import ASSET_FILES
from sae_bench.models.ioi_tiny.tokenizer import build_tokenizer, load_tokenizer
from sae_bench.models.ioi_tiny.train import fixed_threads, make_batch
from sae_bench.tasks.ioi.prompts import TEMPLATES, render, sample
from sae_bench.tasks.ioi.vocab import NAMES

# Small enough that a few training steps take well under a second (without the interchange loss,
# whose circuit map needs four layers; `test_ioi_circuit_interchange.py` trains with it).
TINY = TrainConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64, n_ctx=64, steps=3, batch_size=4,
                   eval_n=30, iit=0.0)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(corpus.vocabulary(), name="ioi-circuit")


# --- tokenizer and corpus ----------------------------------------------------------------------


def test_names_are_single_tokens_and_task_templates_equal_length(tokenizer):
    vocab = tokenizer.get_vocab()
    assert all(" " + name in vocab for name in NAMES)
    spec = sample(60, "fit", torch.Generator().manual_seed(0))
    lengths = {len(tokenizer.encode(render(spec, i).text, add_special_tokens=False))
               for i in range(60)}
    assert lengths == {18} and len(set(spec.template.tolist())) == len(TEMPLATES)


def test_corpus_documents_fit_the_context_and_round_trip(tokenizer):
    docs = corpus.sample_documents(200, torch.Generator().manual_seed(0), n_ctx=64)
    for doc in docs:
        ids = tokenizer.encode(doc.text, add_special_tokens=False)
        assert tokenizer.unk_token_id not in ids, doc.text
        assert len(ids) + 2 <= 64 and tokenizer.decode(ids) == doc.text
    assert sum(len(d.answer_starts) for d in docs) >= 1.5 * len(docs)  # several episodes


def test_corpus_is_deterministic_and_never_pairs_held_out_names():
    def texts(seed: int) -> list[str]:
        return [d.text for d in corpus.sample_documents(40, torch.Generator().manual_seed(seed))]

    assert texts(3) == texts(3) and texts(3) != texts(4)
    index = {name: i for i, name in enumerate(NAMES)}
    for text in texts(5):
        names = {index[w] for w in text.replace(",", " ").replace(".", " ").split() if w in index}
        assert not any(is_held_out(x, y) for x, y in itertools.combinations(sorted(names), 2))


def test_held_out_templates_never_occur_in_training_text():
    held = (*corpus.HELD_OUT_OPENINGS, *corpus.HELD_OUT_CLOSINGS)
    assert not set(held) & set(corpus.OPENINGS + corpus.CLOSINGS)
    # Without fillers a held-out clause would appear verbatim; distractor sentences reuse its
    # words (so their tokens are trained) but never the clause itself.
    docs = corpus.sample_documents(400, torch.Generator().manual_seed(2),
                                   mix=corpus.Mix(max_fillers=0))
    for part in held:
        literals = corpus._SLOT.split(part)[::2]  # split() interleaves literals and slot names
        pattern = re.compile(r"\w+".join(re.escape(x) for x in literals))
        assert not any(pattern.search(d.text) for d in docs), part
    assert any(" sold the " in d.text for d in docs)


def test_s_repeats_put_s_two_to_four_times_and_io_once_in_an_episode():
    """`Mix.s_repeats` sentences mention S again between opening and closing; the roles still
    index the right pieces."""
    draw = corpus._Draw(torch.Generator().manual_seed(0))
    counts = set()
    for _ in range(200):
        middles = tuple(draw.pick(corpus.S_MIDDLES) for _ in range(2) if draw.coin(0.5))
        ep = corpus.episode("", draw.pick(corpus.OPENINGS), draw.pick(corpus.CLOSINGS), "Mary",
                            "John", draw.coin(0.5), {"place": "store", "object": "drink"},
                            middles=middles)
        assert ep.pieces[ep.io] == ep.pieces[ep.answer] == " Mary"
        assert ep.pieces[ep.s1] == ep.pieces[ep.s2] == " John" and ep.s1 < ep.s2 < ep.end
        assert ep.pieces.count(" Mary") == 2  # IO in the opening, and the answer
        counts.add(ep.pieces.count(" John"))
    assert counts == {2, 3, 4}
    # Off (the shipped recipe), the vocabulary and the sampled text stay what they were.
    assert "sat" not in corpus.vocabulary(role_words=False)
    assert " sat" in corpus.vocabulary(role_words=False, s_middles=True)


def test_crowd_sentences_repeat_two_other_names_around_the_pair():
    """`Mix.crowd`: two CROWD_SENTENCES before or inside the episode name D and E twice each;
    IO stays the only name said once, and the roles still index the right pieces."""
    fill = {"place": "store", "object": "drink", "D": "Bob", "E": "Anna"}
    for before, middles in ((corpus.CROWD_SENTENCES[:2], ()), ((corpus.CROWD_SENTENCES[2],),
                            (corpus.CROWD_SENTENCES[3],)), ((), corpus.CROWD_SENTENCES[3:])):
        ep = corpus.episode("Then", corpus.OPENINGS[3], corpus.CLOSINGS[4], "Mary", "John", True,
                            fill, middles=middles, before=before)
        assert ep.pieces[ep.io] == ep.pieces[ep.answer] == " Mary"
        assert ep.pieces[ep.s1] == ep.pieces[ep.s2] == " John" and ep.s1 < ep.s2 < ep.end
        assert ep.pieces[: ep.answer].count(" Mary") == 1
        assert ep.pieces.count(" Bob") == ep.pieces.count(" Anna") == 2
    on = corpus.sample_documents(200, torch.Generator().manual_seed(1), mix=corpus.Mix(crowd=0.7))
    assert any(" waved at " in d.text or " sat together" in d.text for d in on)
    off = corpus.sample_documents(200, torch.Generator().manual_seed(1))
    assert not any(" waved at " in d.text or " sat together" in d.text for d in off)
    assert " waved" in corpus.vocabulary(crowd=True)
    assert " waved" not in corpus.vocabulary()
    with pytest.raises(ValueError, match="cast of 5"):
        corpus.Mix(cast=4, crowd=0.5)


def test_varied_pairs_keep_the_roles_on_the_right_names_and_are_off_by_default():
    for opening in corpus.VARIED_OPENINGS:
        for abb in (True, False):
            ep = corpus.episode("", opening, corpus.CLOSINGS[4], "Mary", "John", abb,
                                {"place": "store", "object": "drink"})
            assert ep.pieces[ep.io] == ep.pieces[ep.answer] == " Mary"
            assert ep.pieces[ep.s1] == ep.pieces[ep.s2] == " John"
            assert (ep.io < ep.s1) is abb
    on = corpus.sample_documents(200, torch.Generator().manual_seed(1),
                                 mix=corpus.Mix(varied_pairs=0.5))
    off = corpus.sample_documents(200, torch.Generator().manual_seed(1))
    assert any(" so was " in d.text for d in on) and not any(" so was " in d.text for d in off)
    assert " lunch" in corpus.vocabulary(varied_pairs=True)
    assert " lunch" not in corpus.vocabulary()


def test_self_closings_answer_s_and_are_off_by_default():
    ep = corpus.episode("", corpus.OPENINGS[3], corpus.SELF_CLOSINGS[0], "Mary", "John", True,
                        {"place": "store", "object": "drink"}, answer="John")
    assert ep.pieces[ep.answer] == ep.pieces[ep.s2] == " John" and ep.pieces[ep.io] == " Mary"
    assert ep.pieces[ep.end] == " for"
    docs = corpus.sample_documents(300, torch.Generator().manual_seed(1),
                                   mix=corpus.Mix(self_closings=0.5))
    assert any(" for " in d.text for d in docs)
    assert not any(" kept the " in d.text for d in corpus.sample_documents(
        300, torch.Generator().manual_seed(1)))


def test_roll_call_episodes_say_io_once_and_every_other_name_at_least_twice(tokenizer):
    """`Mix.roll_call`: no opening; in a shuffled run of one-name sentences IO is said once and
    S once (then S2), D and E two or three times; the roles index the right pieces, IO comes
    before and after S, and the option is off by default."""
    draw = corpus._Draw(torch.Generator().manual_seed(0))
    fill = {"A": "Mary", "B": "John", "C": "Kate", "D": "Bob", "E": "Anna",
            "place": "store", "object": "drink"}
    orders, counts = set(), set()
    for _ in range(200):
        ep = corpus.roll_call_episode(draw, draw.pick(corpus.LEAD_INS),
                                      draw.pick(corpus.CLOSINGS), fill)
        assert ep.pieces[ep.io] == ep.pieces[ep.answer] == " Mary"
        assert ep.pieces[ep.s1] == ep.pieces[ep.s2] == " John" and ep.s1 < ep.s2 < ep.end
        body = ep.pieces[: ep.s2]
        assert body.count(" Mary") == body.count(" John") == 1 and " Kate" not in ep.pieces
        counts |= {body.count(" Bob"), body.count(" Anna")}
        orders.add(ep.io < ep.s1)
    assert counts == {0, 2, 3} and orders == {True, False}
    mix = corpus.Mix(roll_call=1.0, distractor=0.0)
    docs = corpus.sample_documents(100, torch.Generator().manual_seed(1), mix=mix)
    rc_tokenizer = build_tokenizer(corpus.vocabulary(roll_call=True), name="ioi-circuit")
    for doc in docs:
        assert rc_tokenizer.unk_token_id not in rc_tokenizer.encode(doc.text,
                                                                    add_special_tokens=False)
    assert sum(" walked in" in d.text or " was tired" in d.text for d in docs) > 20
    off = corpus.sample_documents(100, torch.Generator().manual_seed(1))
    assert not any(" walked in" in d.text or " was tired" in d.text for d in off)
    assert " tired" in corpus.vocabulary(roll_call=True) and " tired" not in corpus.vocabulary()
    with pytest.raises(ValueError, match="roll_call episodes need a cast of 5"):
        corpus.Mix(cast=4, roll_call=0.5)


def test_echo_repeats_a_roll_call_names_first_sentence_word_for_word():
    """`Mix.echo`: a repeated name's later roll-call sentences copy its first one (so the words
    after a repeat are an induction target); IO and S still appear once; off, no copies."""
    fill = {"A": "Mary", "B": "John", "C": "Kate", "D": "Bob", "E": "Anna",
            "place": "store", "object": "drink"}

    def sentences(ep, name):
        text = "".join(ep.pieces[1: ep.s2 - 1])  # after the lead-in "Then", before the closing
        return [s.strip() for s in text.split(".") if name in s.split()]

    for echo, copies in ((1.0, True), (0.0, False)):
        draw = corpus._Draw(torch.Generator().manual_seed(0))
        same = []
        for _ in range(100):
            ep = corpus.roll_call_episode(draw, "Then", "{C} gave a drink to {IO}.", fill,
                                          echo=echo)
            assert ep.pieces[: ep.s2].count(" Mary") == 1 and ep.pieces[ep.answer] == " Mary"
            said = sentences(ep, "Bob")
            same.append(len(set(said)) == 1)
        assert all(same) if copies else sum(same) < 20
    with pytest.raises(ValueError, match="echo repeats roll-call sentences"):
        corpus.Mix(echo=0.5)


def test_options_off_leave_the_shipped_recipes_text_unchanged():
    """Corpus options draw nothing when off, so the shipped recipe keeps sampling the text (and
    vocabulary) it was trained on. Pinned when the recipe's defaults became run r39's (model
    card); a change here means the shipped weights can no longer be reproduced from
    `recipe.json`."""
    import hashlib

    spec = corpus_spec(TrainConfig())
    batches = [spec.sample(64, torch.Generator().manual_seed(0), step) for step in (0, 5000)]
    text = "\n".join(d.text for b in batches for d in b) + "\n".join(spec.vocabulary())
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "0c5735873797f948"


def test_answer_weights_land_on_every_episode_answer(tokenizer):
    docs = corpus.sample_documents(30, torch.Generator().manual_seed(0))
    tokens, weights = make_batch(tokenizer, docs, answer_weight=5.0)
    for r, doc in enumerate(docs):
        cols = (weights[r] == 5.0).nonzero().flatten().tolist()
        assert len(cols) == len(doc.answer_starts)
        for c, start in zip(cols, doc.answer_starts, strict=True):
            name = doc.text[start:].split()[0].strip(".")
            assert tokenizer.decode([int(tokens[r, c + 1])]) == " " + name


def test_stress_sets_place_roles_on_the_right_tokens(tokenizer):
    vocab = tokenizer.get_vocab()
    for ps in behaviour.stress_sets(tokenizer, 40, seed=0):
        for i, t in enumerate(ps.tokens):
            io, s = vocab[" " + NAMES[int(ps.io[i])]], vocab[" " + NAMES[int(ps.s[i])]]
            assert int(t[ps.positions["IO"][i]]) == io and int(t[ps.positions["S1"][i]]) == s
            assert int(t[ps.positions["S2"][i]]) == s and int(ps.positions["END"][i]) == len(t) - 1
    fillers = behaviour.filler_set(tokenizer, 200, torch.Generator().manual_seed(0))
    lengths = {len(t) for t in fillers.tokens}
    assert min(lengths) == 19 and max(lengths) >= 19 + 7  # 0..8 fillers were inserted
    assert len(behaviour.UNSEEN_TEMPLATES) >= 5


def test_roll_call_prompts_place_roles_on_the_right_tokens():
    from sae_bench.models.ioi_circuit import roll_call

    tok = build_tokenizer(corpus.vocabulary(roll_call=True), name="ioi-circuit")
    items = roll_call.prompts(tok, 60, seed=0)
    for p in items:
        t = p.tokens.tolist()
        assert t[p.io_pos] == p.io and t[p.s1_pos] == t[p.s2_pos] == p.s and t.count(p.io) == 1
        assert p.s1_pos < p.s2_pos < p.end and t.count(p.s) == 2
        assert t.count(p.d) >= 2 and all(t[q] not in (p.io, p.s) for q in p.d_first + p.d_later)
        for q in p.d_later:  # each later mention has an earlier copy, the first mention none
            assert len(roll_call._earlier_copies(p, q)) >= 1
        assert all(len(roll_call._earlier_copies(p, q)) == 0 for q in p.d_first)
    assert roll_call.prompts(tok, 5, seed=1)[0].tokens.tolist() == \
        roll_call.prompts(tok, 5, seed=1)[0].tokens.tolist()


def test_roll_call_measures_attention_shares_that_sum_within_one():
    from sae_bench.models.ioi_circuit import roll_call

    cfg = dataclasses.replace(TINY, roll_call=1.0)
    model, config, tokenizer = train_raw(cfg, progress=False)
    model.tokenizer = tokenizer
    behaviour_, heads = roll_call.measure(model, roll_call.prompts(tokenizer, 20, seed=0))
    assert behaviour_["n"] == 20 and 0.0 <= behaviour_["accuracy"] <= 1.0
    assert set(heads) == {(0, 0), (0, 1)}
    for row in heads.values():
        shares = [row[c] for c in ("END>IO", "END>S1", "END>S2", "END>D")]
        assert all(0.0 <= v <= 1.0 for v in shares) and sum(shares) <= 1.0 + 1e-5
        # From a later mention: its earlier copies and the words after them are distinct keys.
        assert 0.0 < row["Dn>D1"] and 0.0 < row["Dn>D1+1"]
        assert row["Dn>D1"] + row["Dn>D1+1"] <= 1.0 + 1e-5


# --- training -----------------------------------------------------------------------------------


def test_training_is_deterministic_per_seed():
    assert_training_deterministic_per_seed(train_raw, TINY)
    assert corpus_spec(TINY).model_name == "ioi-circuit"


@pytest.mark.parametrize("attn_only", [False, True])
def test_recipe_cli_writes_loadable_assets(tmp_path, capsys, attn_only):
    cfg = dataclasses.replace(TINY, attn_only=attn_only)
    assert main(["--out", str(tmp_path), "--no-progress", *recipe_flags(cfg)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ASSET_FILES)
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert recipe["train_config"] == dataclasses.asdict(cfg)
    assert {"task_all", "unseen_templates", "fillers", "in_context"} <= set(
        recipe["eval"]["metrics"])
    m = load_from(tmp_path)
    assert m.cfg.n_ctx == 64 and m.cfg.normalization_type == "LNPre"
    assert m.cfg.attn_only is attn_only and hasattr(m.blocks[0], "mlp") is not attn_only
    assert m.tokenizer.name_or_path == "ioi-circuit"
    assert "unseen_templates" in capsys.readouterr().out


# --- the shipped model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return load()


def test_shipped_assets_are_small_and_match_the_recipe(model):
    folder = asset_dir()
    assert all((folder / name).is_file() for name in ASSET_FILES)
    assert sum((folder / name).stat().st_size for name in ASSET_FILES) < 30e6
    recipe = json.loads((folder / "recipe.json").read_text())
    assert recipe["canonical_command"] == RETRAIN_COMMAND
    assert model.cfg.n_ctx >= 64 and model.cfg.normalization_type == "LNPre"
    tok = load_tokenizer(folder / "tokenizer.json")
    assert tok.get_vocab() == build_tokenizer(corpus_spec(TrainConfig()).vocabulary()).get_vocab()


@pytest.fixture(scope="module")
def behaviour_metrics(model):
    with fixed_threads(1):  # on a busy 2-core machine, 2 torch threads are many times slower
        return behaviour.behaviour_metrics(model, n=300, seed=1)


def test_shipped_model_meets_the_behaviour_floors(behaviour_metrics):
    for name in ("task_all", "task_held_out_pairs", "fillers", "unseen_templates"):
        assert behaviour_metrics[name]["accuracy"] >= 0.95, name
        assert behaviour_metrics[name]["mean_logit_diff"] >= 3.0, name
    for name in ("fillers", "unseen_templates"):
        assert behaviour_metrics[name]["held_out_accuracy"] >= 0.95, name
    # After distractor sentences (our own set, not one of the issue's): 0.946 in the model card.
    assert behaviour_metrics["in_context"]["accuracy"] >= 0.9
    assert behaviour_metrics["in_context"]["mean_logit_diff"] >= 3.0


def test_shipped_cross_sections_are_registered_on_real_hooks(model):
    from sae_bench.models.nodes import validate_hook
    from sae_bench.tasks import get_task

    sections = get_task("ioi").cross_sections("ioi-circuit")
    assert [cs.name for cs in sections][0] == "bnm_out"
    for cs in sections:
        for node in cs.nodes:
            validate_hook(model, node)


def test_shipped_model_has_the_circuit_its_recipe_trains(model):
    """The issue's circuit floors, re-measured on 200 prompts (the card uses 1,000): the heads the
    recipe maps the circuit onto are classified by their attention alone as name movers,
    S-inhibition and duplicate-token heads; patching the S-inhibition heads' output moves the
    name movers' attention; Pos is causally relevant at a cross-section."""
    from sae_bench.models.ioi_circuit.circuit import (
        classify,
        cross_section_effects,
        head_stats,
        nm_attention_under_patch,
    )
    from sae_bench.models.ioi_circuit.interchange import parse_heads
    from sae_bench.tasks import get_task
    from sae_bench.tasks.ioi.circuits import CIRCUIT_HEADS, ioi_circuit_cross_sections

    cfg = TrainConfig()
    assert parse_heads(cfg.iit_nm) == CIRCUIT_HEADS["name_mover"]
    assert parse_heads(cfg.iit_inh) == CIRCUIT_HEADS["s_inhibition"]
    assert parse_heads(cfg.iit_dup) == CIRCUIT_HEADS["duplicate_token"]
    data = get_task("ioi").build(model, n=200, seed=0, split="eval")
    with fixed_threads(1):
        stats = head_stats(model, data)
        classes = classify(stats)
        nm, si = CIRCUIT_HEADS["name_mover"], CIRCUIT_HEADS["s_inhibition"]
        clean = nm_attention_under_patch(model, data, nm, si, "clean")
        pos = nm_attention_under_patch(model, data, nm, si, "Pos")
        effects = cross_section_effects(model, data, ioi_circuit_cross_sections())
    for name, heads in CIRCUIT_HEADS.items():
        assert set(heads) <= set(classes[name]), name
    for head in nm:
        assert stats[head].end_io >= 0.6 and stats[head].end_s1 + stats[head].end_s2 <= 0.1
        assert stats[head].dla > 0
    # With the Pos-flipped prompt's S-inhibition output, the name movers turn from IO to S1.
    assert clean[0] > 0.9 and pos[0] < 0.5 and pos[1] > 0.5
    assert max(row["Pos"][0] for row in effects.values() if "Pos" in row) >= 0.5


def test_name_movers_under_set_attention_carry_the_mix_of_their_values(model):
    """`nm_output_under_attention` changes the name movers' attention from END and nothing else:
    their output is the set mix of their value vectors, the rest of the share on <bos>."""
    from sae_bench.models.ioi_circuit.circuit import nm_output_under_attention
    from sae_bench.tasks import get_task
    from sae_bench.tasks.ioi.circuits import CIRCUIT_HEADS

    nm = CIRCUIT_HEADS["name_mover"]
    data = get_task("ioi").build(model, n=20, seed=0, split="eval", counterfactuals=False)
    shares = {"IO": 0.6, "S2": 0.1, "END": 0.2}
    z = nm_output_under_attention(model, data, nm, shares)
    _, cache = model.run_with_cache(data.tokens, names_filter=lambda n: n.endswith("hook_v"))
    rows = torch.arange(len(data.tokens))
    for i, (layer, head) in enumerate(nm):
        v = cache[f"blocks.{layer}.attn.hook_v"][:, :, head]  # [n, pos, d_head]
        mix = 0.1 * v[:, 0] + sum(share * v[rows, data.positions[role]]
                                  for role, share in shares.items())
        torch.testing.assert_close(z[:, i], mix)
    with pytest.raises(ValueError, match="sum to at most 1"):
        nm_output_under_attention(model, data, nm, {"IO": 0.9, "S1": 0.2})


@pytest.mark.parametrize(("module", "args", "message"), [
    ("io_route", ["--assets", "{tmp}/none"], "asset config.json is missing"),
    ("circuit", ["--n", "0"], "need at least one prompt"),
    ("roll_call", ["--model", "ioi-tiny", "--n", "5"], "use a model trained with --roll-call"),
    ("interchange", ["--assets", "{shipped}", "--nm", "9.9"], "head 9.9 is not in a 4x4 model"),
    ("train", ["--out", "{tmp}/x", "--iit", "1", "--iit-strictness", "some"],
     "--iit-strictness must be one of all, one"),
    ("train", ["--out", "{tmp}/x", "--roll-call", "0", "--echo", "0.5"],
     "set roll_call above 0 too"),
])
def test_diagnostics_refuse_bad_input_in_one_line(tmp_path, module, args, message):
    """`python -m` diagnostics answer bad input like the CLI: one stderr line, exit code 2."""
    import subprocess
    import sys

    argv = [a.format(tmp=tmp_path, shipped=asset_dir()) for a in args]
    done = subprocess.run([sys.executable, "-m", f"sae_bench.models.ioi_circuit.{module}",
                           *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr
