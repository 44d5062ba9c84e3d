"""`InterventionRunner` gives the numbers of the hook-based reference in
`sae_bench.engine.patching`.

Small random models with GPT-2's tokenizer: a 12-layer, 12-head one so GPT-2's IOI cross-sections
apply unchanged, 4-layer ones for other block variants, and one check on gpt2-random itself.
"""

from __future__ import annotations

import pytest
import torch

from sae_bench.engine.patching import collect_activations, run_patched
from sae_bench.engine.runner import InterventionRunner, RunOutput
from sae_bench.engine.suffix_forward import SITES
from sae_bench.errors import UserError
from sae_bench.models.nodes import Node
from sae_bench.tasks import get_task

TASK = get_task("ioi")
# float32 rounding differs between the full-sequence and window matmuls; observed <= 2e-6.
ATOL = 1e-5
HEAD_SITES = ("attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z")


def make_model(tok, **overrides):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    kwargs = dict(
        n_layers=12, d_model=48, n_heads=12, d_head=4, d_mlp=96, d_vocab=tok.vocab_size,
        n_ctx=32, act_fn="gelu_new", normalization_type="LNPre", default_prepend_bos=True,
        seed=0,
    )
    kwargs.update(overrides)
    cfg = HookedTransformerConfig(**kwargs)
    return HookedTransformer(cfg, tokenizer=tok, move_to_device=False).eval()


@pytest.fixture(scope="module")
def model12(gpt2_tok):
    return make_model(gpt2_tok)


@pytest.fixture(scope="module")
def data12(model12):
    return TASK.build(model12, n=32, seed=0, split="eval")


@pytest.fixture(scope="module")
def runner12(model12, data12):
    d = data12
    # Several batches, so sorting prompts by their earliest patched position is exercised.
    return InterventionRunner(model12, d.tokens, d.positions, d.answer_ids, d.distractor_ids,
                              batch_size=12)


def noisy_patches(model, data, nodes, seed=0):
    """Clean activations plus noise a few times their own scale, so that even a single head's
    query in a random model moves the logit difference well beyond the tolerance."""
    gen = torch.Generator().manual_seed(seed)
    acts = collect_activations(model, data.tokens, data.positions, nodes)
    return {n: a + 4 * a.std() * torch.randn(a.shape, generator=gen) for n, a in acts.items()}


def check(runner, model, data, patches, *, index=None, expect_effect=True):
    """run() == run_patched() on the same prompts, with and without argmax."""
    sub = data if index is None else data.subset(index)
    ref = run_patched(model, sub.tokens, sub.positions, patches, sub.answer_ids,
                      sub.distractor_ids)
    out = runner.run(patches, index=index)
    torch.testing.assert_close(out.logit_diff, ref.logit_diff, atol=ATOL, rtol=0)
    assert torch.equal(out.argmax, ref.argmax)
    lean = runner.run(patches, argmax=False, index=index)
    torch.testing.assert_close(lean.logit_diff, ref.logit_diff, atol=ATOL, rtol=0)
    assert lean.argmax is None
    if expect_effect:  # a runner that ignored the patch must fail the comparison above
        clean = runner.clean().logit_diff if index is None else runner.clean().logit_diff[index]
        assert (ref.logit_diff - clean).abs().max() > 20 * ATOL


def check_activations(runner, model, data, nodes):
    """runner.activations() == collect_activations(), in the order asked for."""
    ref = collect_activations(model, data.tokens, data.positions, nodes)
    acts = runner.activations(nodes)
    assert list(acts) == list(nodes)
    for node in nodes:
        torch.testing.assert_close(acts[node], ref[node], atol=ATOL, rtol=0)


def test_clean_matches_reference(model12, data12, runner12):
    d = data12
    ref = run_patched(model12, d.tokens, d.positions, {}, d.answer_ids, d.distractor_ids)
    clean = runner12.clean()
    assert isinstance(clean, RunOutput)
    torch.testing.assert_close(clean.logit_diff, ref.logit_diff, atol=ATOL, rtol=0)
    assert torch.equal(clean.argmax, ref.argmax)
    assert not clean.logit_diff.requires_grad
    empty = runner12.run({}, argmax=False, index=torch.tensor([3, 1]))
    assert torch.equal(empty.logit_diff, clean.logit_diff[[3, 1]]) and empty.argmax is None


@pytest.mark.parametrize("name", [cs.name for cs in TASK.cross_sections("gpt2")])
def test_gpt2_cross_sections_match_reference(model12, data12, runner12, name):
    cs = {c.name: c for c in TASK.cross_sections("gpt2")}[name]
    check_activations(runner12, model12, data12, cs.nodes)
    check(runner12, model12, data12, noisy_patches(model12, data12, cs.nodes))


def site_nodes():
    """(site, head, layer, role) cases: every site, first/middle/last layer, head and no head."""
    cases = []
    for site in SITES:
        for layer, role in ((0, "S1"), (6, "S2"), (11, "END")):
            cases.append(Node(f"blocks.{layer}.{site}", role))
            if site in HEAD_SITES:
                cases.append(Node(f"blocks.{layer}.{site}", role, head=layer % 12))
    return cases


@pytest.mark.parametrize("node", site_nodes(), ids=str)
def test_every_hook_site_matches_reference(model12, data12, runner12, node):
    check_activations(runner12, model12, data12, [node])
    check(runner12, model12, data12, noisy_patches(model12, data12, [node]))


def test_last_layer_positions_before_end(model12, data12, runner12):
    # At the last block only END's output reaches the logits; keys/values elsewhere still do.
    dead = [Node("blocks.11.attn.hook_z", "S2", 3), Node("blocks.11.hook_mlp_out", "IO")]
    check(runner12, model12, data12, noisy_patches(model12, data12, dead), expect_effect=False)
    live = dead + [Node("blocks.11.attn.hook_k", "IO", 3), Node("blocks.11.hook_resid_pre", "S1")]
    check(runner12, model12, data12, noisy_patches(model12, data12, live))


def test_mixed_nodes_and_overlapping_patches(model12, data12, runner12):
    nodes = [
        Node("blocks.3.attn.hook_k", "IO", 2),
        Node("blocks.3.attn.hook_q", "END", 2),
        Node("blocks.3.attn.hook_v", "S1+1"),
        Node("blocks.5.mlp.hook_post", "S2"),
        Node("blocks.7.hook_resid_mid", "S1"),
        # Same entries twice: the whole-layer patch first, then one head over it.
        Node("blocks.9.attn.hook_z", "END"),
        Node("blocks.9.attn.hook_z", "END", 9),
        Node("blocks.10.hook_attn_out", "S2"),
        Node("blocks.10.hook_resid_post", "END"),
    ]
    check(runner12, model12, data12, noisy_patches(model12, data12, nodes))


def test_index_runs_a_subset(model12, data12, runner12):
    cs = {c.name: c for c in TASK.cross_sections("gpt2")}["bnm_qk"]
    index = torch.randperm(len(data12), generator=torch.Generator().manual_seed(1))[:13]
    full = noisy_patches(model12, data12, cs.nodes)
    check(runner12, model12, data12, {n: v[index] for n, v in full.items()}, index=index)
    whole = runner12.run(full)
    part = runner12.run({n: v[index] for n, v in full.items()}, index=index)
    torch.testing.assert_close(part.logit_diff, whole.logit_diff[index], atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(normalization_type="LN", act_fn="gelu"),
        dict(normalization_type="RMS", act_fn="silu"),
        dict(normalization_type=None, act_fn="relu"),
        dict(attn_only=True),
    ],
    ids=["LN-gelu", "RMS-silu", "none-relu", "attn_only"],
)
def test_block_variants_match_reference(gpt2_tok, overrides):
    model = make_model(gpt2_tok, n_layers=4, n_heads=4, d_head=12, **overrides)
    d = TASK.build(model, n=24, seed=1, split="eval")
    runner = InterventionRunner(model, d.tokens, d.positions, d.answer_ids, d.distractor_ids,
                                batch_size=10)
    assert runner.fallback_reason is None
    nodes = [
        Node("blocks.1.attn.hook_k", "S1", 1),
        Node("blocks.1.hook_resid_pre", "IO"),
        Node("blocks.2.attn.hook_v", "S2"),
        Node("blocks.3.attn.hook_q", "END", 0),
    ]
    if not overrides.get("attn_only"):
        nodes += [Node("blocks.2.mlp.hook_pre", "S2"), Node("blocks.3.hook_resid_mid", "END")]
    check(runner, model, d, noisy_patches(model, d, nodes))
    check_activations(runner, model, d, nodes)


def test_partial_cache(model12, data12):
    d = data12
    runner = InterventionRunner(model12, d.tokens, d.positions, d.answer_ids, d.distractor_ids,
                                cache_from_layer=6)
    full = InterventionRunner(model12, d.tokens, d.positions, d.answer_ids, d.distractor_ids)
    assert runner.cache_nbytes == full.cache_nbytes // 2
    # 12 layers x (resid + k + v) x n x seq x 48 floats
    assert full.cache_nbytes == 12 * 3 * d.tokens.numel() * 48 * 4
    nodes = [Node("blocks.2.attn.hook_z", "S2", 1), Node("blocks.8.attn.hook_q", "END", 4)]
    check(runner, model12, d, noisy_patches(model12, d, nodes))
    check_activations(runner, model12, d, nodes)


def test_residual_stream_cached_only_where_asked(model12, data12):
    """Runs and activations starting at a layer without a cached residual stream recompute it."""
    d = data12
    runner = InterventionRunner(model12, d.tokens, d.positions, d.answer_ids, d.distractor_ids,
                                cache_from_layer=2, resid_layers=[2, 7], batch_size=12)
    # 10 layers of keys and values, 2 of residual stream.
    assert runner.cache_nbytes == (10 * 2 + 2) * d.tokens.numel() * 48 * 4
    nodes = [Node("blocks.5.attn.hook_z", "S2", 1), Node("blocks.7.hook_resid_pre", "END"),
             Node("blocks.8.hook_resid_pre", "S1"), Node("blocks.4.hook_resid_post", "IO")]
    check_activations(runner, model12, d, nodes)
    for node in nodes:
        check(runner, model12, d, noisy_patches(model12, d, [node]))


def test_unsupported_hook_falls_back(model12, data12, runner12):
    nodes = [Node("blocks.2.ln2.hook_normalized", "S2"), Node("blocks.4.attn.hook_z", "END", 3)]
    patches = noisy_patches(model12, data12, nodes)
    d = data12
    ref = run_patched(model12, d.tokens, d.positions, patches, d.answer_ids, d.distractor_ids)
    out = runner12.run(patches)
    assert torch.equal(out.logit_diff, ref.logit_diff) and torch.equal(out.argmax, ref.argmax)
    acts = runner12.activations(nodes)
    ref_acts = collect_activations(model12, d.tokens, d.positions, nodes)
    assert torch.equal(acts[nodes[0]], ref_acts[nodes[0]])
    torch.testing.assert_close(acts[nodes[1]], ref_acts[nodes[1]], atol=ATOL, rtol=0)


def test_unsupported_model_falls_back(gpt2_tok):
    model = make_model(gpt2_tok, n_layers=2, n_heads=4, d_head=12,
                       positional_embedding_type="rotary", rotary_dim=12)
    d = TASK.build(model, n=12, seed=0, split="eval")
    runner = InterventionRunner(model, d.tokens, d.positions, d.answer_ids, d.distractor_ids)
    assert runner.fallback_reason and "rotary" in runner.fallback_reason
    assert runner.cache_nbytes == 0
    nodes = [Node("blocks.0.attn.hook_v", "S1", 2), Node("blocks.1.hook_resid_pre", "S2")]
    patches = noisy_patches(model, d, nodes)
    ref = run_patched(model, d.tokens, d.positions, patches, d.answer_ids, d.distractor_ids)
    out = runner.run(patches)
    assert torch.equal(out.logit_diff, ref.logit_diff) and torch.equal(out.argmax, ref.argmax)
    index = torch.tensor([5, 0, 7])
    sub = d.subset(index)
    ref = run_patched(model, sub.tokens, sub.positions, {n: v[index] for n, v in patches.items()},
                      sub.answer_ids, sub.distractor_ids)
    out = runner.run({n: v[index] for n, v in patches.items()}, index=index)
    assert torch.equal(out.logit_diff, ref.logit_diff)
    acts = runner.activations(nodes)
    ref_acts = collect_activations(model, d.tokens, d.positions, nodes)
    assert all(torch.equal(acts[n], ref_acts[n]) for n in nodes)


def test_bad_patch_shape_is_a_user_error(runner12):
    node = Node("blocks.3.attn.hook_z", "END", 0)
    with pytest.raises(UserError, match="expected"):
        runner12.run({node: torch.zeros(3, 4)})
    with pytest.raises(UserError, match="unknown hook"):
        runner12.run({Node("blocks.3.attn.hook_zz", "END"): torch.zeros(32, 4)})


@pytest.mark.slow
def test_gpt2_random_matches_reference(gpt2_random):
    d = TASK.build(gpt2_random, n=6, seed=0, split="eval")
    runner = InterventionRunner(gpt2_random, d.tokens, d.positions, d.answer_ids,
                                d.distractor_ids)
    assert runner.fallback_reason is None
    cs = {c.name: c for c in TASK.cross_sections("gpt2-random")}
    nodes = cs["bnm_qk"].nodes + cs["si_v"].nodes
    check(runner, gpt2_random, d, noisy_patches(gpt2_random, d, nodes))


def test_ioi_tiny_matches_reference():
    from sae_bench.models.registry import load_model

    model = load_model("ioi-tiny")
    d = TASK.build(model, n=48, seed=0, split="eval")
    runner = InterventionRunner(model, d.tokens, d.positions, d.answer_ids, d.distractor_ids,
                                batch_size=20)
    assert runner.fallback_reason is None
    ref = run_patched(model, d.tokens, d.positions, {}, d.answer_ids, d.distractor_ids)
    torch.testing.assert_close(runner.clean().logit_diff, ref.logit_diff, atol=ATOL, rtol=0)
    for cs in TASK.cross_sections("ioi-tiny"):
        check_activations(runner, model, d, cs.nodes)
        check(runner, model, d, noisy_patches(model, d, cs.nodes))
