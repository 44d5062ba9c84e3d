"""GPT-2 loading and the IOI circuit's nodes, checked on a random GPT-2-Small-shaped model."""

from __future__ import annotations

import json
import time

import pytest
import torch

from sae_bench.cli.main import main
from sae_bench.engine.patching import collect_activations
from sae_bench.errors import UserError
from sae_bench.models.nodes import Node, node_width
from sae_bench.models.registry import load_model
from sae_bench.tasks import get_task

TASK = get_task("ioi")


def test_cross_sections_match_the_paper():
    cs = {c.name: c for c in TASK.cross_sections("gpt2")}
    assert set(cs) == {"bnm_out", "bnm_qk", "bnm_q", "si_out", "si_v", "ind_dt_out"}
    assert len(cs["bnm_out"].nodes) == 11 and cs["bnm_out"].attributes == ("IO",)
    assert len(cs["bnm_qk"].nodes) == 33
    assert {n.position for n in cs["bnm_qk"].nodes} == {"END", "IO", "S1"}
    assert Node("blocks.9.attn.hook_z", "END", 9) in cs["bnm_out"].nodes
    assert Node("blocks.0.attn.hook_z", "S2", 10) in cs["ind_dt_out"].nodes
    assert {n.hook for n in cs["si_v"].nodes} == {"blocks.7.attn.hook_v", "blocks.8.attn.hook_v"}


def test_gpt2_shaped_model_hooks_shapes_and_positions(gpt2_random, gpt2_tok):
    model = gpt2_random
    data = TASK.build(model, n=8, seed=0)
    for cs in TASK.cross_sections("gpt2-random"):
        for node in cs.nodes:
            assert node_width(model, node) == 64
        acts = collect_activations(model, data.tokens, data.positions, cs.nodes)
        assert all(a.shape == (8, 64) for a in acts.values())
    # The node positions address the right tokens of the real GPT-2 tokenization.
    row = 0
    for role, word in (("IO", data.attributes["IO"].value_of(row)),
                       ("S1", data.attributes["S"].value_of(row)),
                       ("S2", data.attributes["S"].value_of(row))):
        assert gpt2_tok.decode(data.tokens[row, data.positions[role][row]]) == " " + word
    assert gpt2_tok.decode(data.tokens[row, data.positions["END"][row]]) == " to"
    # Residual and attention-output nodes exist at every layer.
    nodes = TASK.nodes("gpt2-random", model)
    assert Node("blocks.11.hook_resid_post", "END") in nodes
    assert Node("blocks.0.hook_attn_out", "S2") in nodes
    assert node_width(model, Node("blocks.5.hook_resid_pre", "END")) == 768
    assert node_width(model, Node("blocks.5.attn.hook_z", "END")) == 768  # all heads flattened


def test_hook_and_head_validation(gpt2_random):
    with pytest.raises(UserError, match="unknown hook 'blocks.9.attn.hook_zz'.*Did you mean"):
        node_width(gpt2_random, Node.parse("blocks.9.attn.hook_zz@END"))
    with pytest.raises(UserError, match="head 12 out of range"):
        node_width(gpt2_random, Node.parse("blocks.9.attn.hook_z:12@END"))
    with pytest.raises(UserError, match="has no head axis"):
        Node.parse("blocks.3.hook_resid_post:2@END")
    with pytest.raises(UserError, match="cannot parse node"):
        Node.parse("blocks.3.hook_resid_post")
    assert Node.parse("blocks.9.attn.hook_q:9@END") == Node("blocks.9.attn.hook_q", "END", 9)


def test_gpt2_without_hub_fails_fast_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-sae-bench-test")
    start = time.perf_counter()
    with pytest.raises(UserError, match="ioi-tiny"):
        load_model("gpt2")
    code = main(["reference", "--model", "gpt2", "--out", "/tmp/never-written.json"])
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--model ioi-tiny" in err[0]


def test_unknown_model_did_you_mean():
    with pytest.raises(UserError, match="unknown model 'gpt-2'. Did you mean 'gpt2'"):
        load_model("gpt-2")


def test_nodes_cli_json(capsys):
    assert main(["nodes", "--task", "ioi", "--model", "gpt2-random", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["task"] == "ioi" and doc["model"] == "gpt2-random"
    assert {c["name"] for c in doc["cross_sections"]} >= {"bnm_out", "si_v"}
    first = doc["nodes"][0]
    assert set(first) == {"node", "hook", "head", "position", "width"}
    assert any(n["node"] == "blocks.9.attn.hook_z:9@END" and n["width"] == 64
               for n in doc["nodes"])


def test_activations_are_deterministic(gpt2_random):
    data = TASK.build(gpt2_random, n=4, seed=1)
    node = [Node("blocks.3.hook_resid_post", "S2")]
    a = collect_activations(gpt2_random, data.tokens, data.positions, node)[node[0]]
    b = collect_activations(gpt2_random, data.tokens, data.positions, node)[node[0]]
    assert torch.equal(a, b)


def test_fused_gelu_matches_transformer_lens_gelu_new(gpt2_random):
    """GPT-2 models run PyTorch's fused tanh GELU (models.use_fused_gelu); it must compute what
    TransformerLens' gelu_new computes."""
    from transformer_lens.utilities.activation_functions import gelu_new

    assert all(b.mlp.act_fn is not gelu_new for b in gpt2_random.blocks)
    x = torch.randn(4096, generator=torch.Generator().manual_seed(0)) * 3
    torch.testing.assert_close(gpt2_random.blocks[0].mlp.act_fn(x), gelu_new(x), atol=1e-6,
                               rtol=0)
    tokens = TASK.build(gpt2_random, n=4, seed=0).tokens
    with torch.no_grad():
        fused = gpt2_random(tokens)[:, -1]
        originals = [b.mlp.act_fn for b in gpt2_random.blocks]
        try:
            for b in gpt2_random.blocks:
                b.mlp.act_fn = gelu_new
            reference = gpt2_random(tokens)[:, -1]
        finally:
            for b, fn in zip(gpt2_random.blocks, originals, strict=True):
                b.mlp.act_fn = fn
    torch.testing.assert_close(fused, reference, atol=1e-4, rtol=0)
