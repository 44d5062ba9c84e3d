"""ioi-tiny: tokenizer, corpus, shipped model quality, training determinism, weight processing."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import socket
from importlib import resources

import pytest
import torch
from helpers import assert_training_deterministic_per_seed, recipe_flags

from sae_bench.errors import UserError
from sae_bench.models.ioi_tiny import corpus
from sae_bench.models.ioi_tiny.model import (
    ASSET_FILES,
    RETRAIN_COMMAND,
    asset_dir,
    build,
    check_processing,
    load,
    load_from,
    make_config,
    process,
)
from sae_bench.models.ioi_tiny.tokenizer import load_tokenizer
from sae_bench.models.ioi_tiny.train import (
    TrainConfig,
    fixed_threads,
    init_weights_,
    main,
    make_batch,
    train_raw,
)
from sae_bench.tasks.ioi.prompts import PREFIX, TEMPLATES, render, sample
from sae_bench.tasks.ioi.vocab import NAMES, OBJECTS, PLACES

# A model small enough that a few training steps take well under a second.
TINY = TrainConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64, steps=3, batch_size=8,
                   eval_n=50)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(asset_dir() / "tokenizer.json")


@pytest.fixture(scope="module")
def model():
    return load()


@pytest.fixture(scope="module")
def metrics(model):
    from sae_bench.models.ioi_tiny.evaluate import ioi_metrics

    # One thread: on a busy 2-core machine, 2 torch threads are many times slower.
    with fixed_threads(1):
        return ioi_metrics(model, n=1000, seed=0)


# --- tokenizer -------------------------------------------------------------------------------


def test_names_objects_places_are_single_known_tokens(tokenizer):
    for word in (*NAMES, *OBJECTS, *PLACES):
        ids = tokenizer.encode(" " + word, add_special_tokens=False)
        assert len(ids) == 1 and ids[0] != tokenizer.unk_token_id, word


def test_templates_tokenize_to_equal_lengths(tokenizer):
    spec = sample(30, "fit", torch.Generator().manual_seed(0))
    lengths = {t: set() for t in range(len(TEMPLATES))}
    for i in range(30):
        ids = tokenizer.encode(render(spec, i).text, add_special_tokens=False)
        lengths[int(spec.template[i])].add(len(ids))
    assert len(set().union(*lengths.values())) == 1, lengths


def test_offsets_punctuation_and_decoding(tokenizer):
    text = PREFIX + "Mary and John went to the store. John gave a ball to Mary."
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces = [text[a:b] for a, b in enc["offset_mapping"]]
    assert pieces[:4] == ["Then", ",", " Mary", " and"]
    assert pieces[-2:] == [" Mary", "."]
    assert tokenizer.unk_token_id not in enc["input_ids"]
    assert tokenizer.decode(enc["input_ids"]) == text
    with_bos = tokenizer(text)["input_ids"]
    assert with_bos[0] == tokenizer.bos_token_id and with_bos[1:] == enc["input_ids"]


def test_corpus_has_no_unknown_tokens_and_round_trips(tokenizer):
    docs = corpus.sample_documents(300, torch.Generator().manual_seed(0))
    for doc in docs:
        ids = tokenizer.encode(doc.text, add_special_tokens=False)
        assert tokenizer.unk_token_id not in ids, doc.text
        assert tokenizer.decode(ids) == doc.text


def test_attaching_the_tokenizer_never_touches_the_network(tokenizer, monkeypatch):
    import transformers
    from transformer_lens.utilities import tokenize_utils

    def refuse(*args, **kwargs):
        raise AssertionError("network or hub access attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    monkeypatch.setattr(tokenize_utils.AutoTokenizer, "from_pretrained", refuse)
    config = make_config(len(tokenizer), n_layers=1, d_model=32, n_heads=2, d_mlp=64, n_ctx=32)
    m = build(config, tokenizer=tokenizer)  # HookedTransformer(cfg, tokenizer=tok), as load() does
    assert m.cfg.default_prepend_bos
    tokens = m.to_tokens("Then, Mary and John went to the store.")
    assert tokens[0, 0] == tokenizer.bos_token_id
    assert (tokens == tokenizer.bos_token_id).sum() == 1  # prepended once, not twice
    assert m.to_string(tokens[0, 1:]) == "Then, Mary and John went to the store."


# --- corpus and held-out pairs -----------------------------------------------------------------


def test_held_out_rule_is_symmetric_and_about_a_fifth():
    a, b = torch.meshgrid(torch.arange(len(NAMES)), torch.arange(len(NAMES)), indexing="ij")
    held = corpus.held_out(a, b)
    assert torch.equal(held, held.T)
    assert not held.diagonal().any()
    pairs = held.triu(1).sum() / (len(NAMES) * (len(NAMES) - 1) / 2)
    assert 0.17 < float(pairs) < 0.23
    assert held.sum(1).min() > 0  # every name loses some partners ...
    assert (~held).sum(1).min() > len(NAMES) // 2  # ... and keeps most of them
    assert corpus.is_held_out("Mary", "John") == corpus.is_held_out(1, 0)


def test_held_out_pairs_never_co_occur_in_training_text():
    docs = corpus.sample_documents(2000, torch.Generator().manual_seed(1))
    index = {name: i for i, name in enumerate(NAMES)}
    for doc in docs:
        names = {index[w] for w in doc.text.replace(",", " ").replace(".", " ").split()
                 if w in index}
        for x, y in itertools.combinations(sorted(names), 2):
            assert not corpus.is_held_out(x, y), doc.text
    assert {d.family for d in docs} == set(corpus.FAMILIES)


def test_corpus_is_deterministic_per_seed():
    def texts(seed: int) -> list[str]:
        return [d.text for d in corpus.sample_documents(50, torch.Generator().manual_seed(seed))]

    assert texts(3) == texts(3)
    assert texts(3) != texts(4)


def test_answer_weight_lands_on_the_io_name(tokenizer):
    docs = [d for d in corpus.sample_documents(50, torch.Generator().manual_seed(0))
            if d.answer_start is not None]
    tokens, weights = make_batch(tokenizer, docs, answer_weight=5.0)
    rows, cols = (weights == 5.0).nonzero(as_tuple=True)
    assert torch.equal(rows, torch.arange(len(docs)))
    for r, c, doc in zip(rows.tolist(), cols.tolist(), docs, strict=True):
        io = doc.text[doc.answer_start:].split()[0].strip(".")
        assert tokenizer.decode([int(tokens[r, c + 1])]) == " " + io


# --- the shipped model --------------------------------------------------------------------------


def test_shipped_assets_are_small_and_processed(model):
    folder = asset_dir()
    assert all((folder / name).is_file() for name in ASSET_FILES)
    assert (folder / "model.safetensors").stat().st_size < 3.2e6
    assert model.cfg.normalization_type == "LNPre"
    assert not model.training and model.tokenizer is not None
    recipe = json.loads((folder / "recipe.json").read_text())
    assert recipe["canonical_command"] == RETRAIN_COMMAND


def test_shipped_model_meets_the_quality_bar(metrics):
    assert metrics["all"]["accuracy"] >= 0.95
    assert metrics["all"]["mean_logit_diff"] >= 3.0
    assert metrics["held_out_pairs"]["n"] >= 100
    assert metrics["held_out_pairs"]["accuracy"] >= 0.95
    for cf in ("cf_IO", "cf_S", "cf_Pos"):
        assert metrics[cf]["accuracy"] >= 0.9, cf


def test_missing_or_corrupt_assets_raise_a_user_error(tmp_path):
    with resources.as_file(asset_dir()) as src:
        shutil.copytree(src, tmp_path / "ok")
    shutil.copytree(tmp_path / "ok", tmp_path / "missing")
    (tmp_path / "missing" / "model.safetensors").unlink()
    with pytest.raises(UserError, match="missing.*sae_bench.models.ioi_tiny.train"):
        load_from(tmp_path / "missing")
    shutil.copytree(tmp_path / "ok", tmp_path / "corrupt")
    (tmp_path / "corrupt" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="corrupt.*sae_bench.models.ioi_tiny.train"):
        load_from(tmp_path / "corrupt")


# --- training and processing --------------------------------------------------------------------


def test_training_is_deterministic_per_seed():
    assert_training_deterministic_per_seed(train_raw, TINY)


def test_processing_leaves_logits_unchanged():
    model, config, tokenizer = train_raw(TINY, progress=False)
    # A few steps barely move LN gains and biases; randomise them so folding has work to do.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    processed, processed_config = process(model, config)
    assert processed_config["normalization_type"] == "LNPre"
    docs = corpus.sample_documents(32, torch.Generator().manual_seed(0))
    tokens, _ = make_batch(tokenizer, docs, 1.0)
    for dtype in (torch.float64, torch.float32):
        assert check_processing(model, processed, tokens, rtol=1e-5, dtype=dtype) <= 1e-4
    fresh = build(processed_config, tokenizer=tokenizer)
    fresh.load_state_dict(processed.state_dict())
    assert torch.allclose(fresh.eval()(tokens), processed(tokens), atol=1e-6)
    # The check must reject a processing that changes the model: shift one output bias (by a
    # random vector: a constant one is invisible behind the next LayerNorm's centring).
    with torch.no_grad():
        b_O = fresh.blocks[0].attn.b_O
        b_O.add_(0.5 * torch.randn(b_O.shape, generator=gen))
    with pytest.raises(AssertionError, match="processing changed the logits"):
        check_processing(model, fresh, tokens)


def test_recipe_cli_writes_loadable_assets(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--no-progress", *recipe_flags(TINY)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ASSET_FILES)
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert recipe["train_config"] == dataclasses.asdict(TINY)
    assert set(recipe["eval"]["metrics"]) >= {"all", "held_out_pairs", "cf_IO", "cf_S", "cf_Pos"}
    m = load_from(tmp_path)
    assert m.cfg.n_layers == TINY.n_layers and m.cfg.normalization_type == "LNPre"
    assert "accuracy" in capsys.readouterr().out


def test_training_never_touches_the_global_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    model, _, _ = train_raw(dataclasses.replace(TINY, steps=1), progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    init_weights_(model, torch.Generator().manual_seed(0), 0.02)
    assert torch.equal(torch.get_rng_state(), before)
