"""`collect.node_activations` gives the activations of the reference `patching.collect_activations`
on any prompt set, while computing only the layers and positions the nodes need."""

from __future__ import annotations

import pytest
import torch
from test_runner import ATOL, HEAD_SITES, TASK, make_model

from sae_bench.engine.collect import node_activations
from sae_bench.engine.patching import collect_activations
from sae_bench.engine.suffix_forward import SITES
from sae_bench.models.nodes import Node


@pytest.fixture(scope="module")
def model12(gpt2_tok):
    return make_model(gpt2_tok)


@pytest.fixture(scope="module")
def prompts12(model12):
    """Counterfactual prompts: a prompt set the runner's cache never saw."""
    return TASK.build(model12, n=30, seed=2, split="eval").counterfactuals["Pos"]


def same(model, data, nodes, batch_size=7):
    """Batches of 7 over 30 prompts: several batches, each cut at its own last position."""
    ref = collect_activations(model, data.tokens, data.positions, nodes)
    got = node_activations(model, data.tokens, data.positions, nodes, batch_size=batch_size)
    assert list(got) == list(nodes)
    for node in nodes:
        assert got[node].shape == ref[node].shape and got[node].dtype == torch.float32
        torch.testing.assert_close(got[node], ref[node], atol=ATOL, rtol=0)


@pytest.mark.parametrize("site", SITES)
def test_every_site_at_every_role(model12, prompts12, site):
    """Alone (the last block then computes END only when the node reads END) and per head."""
    for layer, role in ((0, "IO"), (5, "S1"), (7, "S2"), (11, "END")):
        same(model12, prompts12, [Node(f"blocks.{layer}.{site}", role)])
        if site in HEAD_SITES:
            same(model12, prompts12, [Node(f"blocks.{layer}.{site}", role, head=layer % 12)])


def test_mixed_nodes_in_one_pass(model12, prompts12):
    # END and S2 in the last block: it must then compute every position.
    same(model12, prompts12, [
        Node("blocks.3.attn.hook_z", "S2", 1), Node("blocks.9.hook_resid_post", "END"),
        Node("blocks.9.mlp.hook_post", "S2"), Node("blocks.9.attn.hook_k", "IO", 4),
        Node("blocks.2.hook_resid_pre", "S1+1"),
    ])


def test_gpt2_cross_sections(gpt2_random):
    data = TASK.build(gpt2_random, n=12, seed=0, split="fit", counterfactuals=False)
    for cs in TASK.cross_sections("gpt2-random"):
        same(gpt2_random, data, list(cs.nodes), batch_size=5)


def test_unsupported_hook_and_model_use_the_reference(model12, prompts12, gpt2_tok):
    nodes = [Node("blocks.2.ln2.hook_normalized", "S2"), Node("blocks.4.attn.hook_z", "END", 3)]
    ref = collect_activations(model12, prompts12.tokens, prompts12.positions, nodes)
    got = node_activations(model12, prompts12.tokens, prompts12.positions, nodes)
    assert all(torch.equal(got[n], ref[n]) for n in nodes)
    rotary = make_model(gpt2_tok, n_layers=2, n_heads=4, d_head=12,
                        positional_embedding_type="rotary", rotary_dim=12)
    d = TASK.build(rotary, n=6, seed=0, split="eval")
    node = Node("blocks.1.attn.hook_v", "S2", 2)
    assert torch.equal(node_activations(rotary, d.tokens, d.positions, [node])[node],
                       collect_activations(rotary, d.tokens, d.positions, [node])[node])
