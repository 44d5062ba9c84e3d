"""Interchange-intervention training for ioi-circuit (`sae_bench.models.ioi_circuit.interchange`):
the pairs, the labels of the high-level circuit, and the labels checked against a real circuit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sae_bench.models.ioi_circuit import interchange as iit
from sae_bench.models.ioi_circuit import train as circuit_train
from sae_bench.models.ioi_tiny.corpus import held_out
from sae_bench.models.ioi_tiny.model import build, make_config
from sae_bench.models.ioi_tiny.tokenizer import build_tokenizer
from sae_bench.models.ioi_tiny.train import init_weights_
from sae_bench.tasks.ioi.vocab import NAMES

PLANTED_MAP = iit.CircuitMap(dup=((0, 0),), inh=((1, 0), (1, 1)), nm=((2, 0), (2, 1)))


@pytest.fixture(scope="module")
def tokenizer():
    spec = circuit_train.corpus_spec(circuit_train.TrainConfig(varied_pairs=0.5))
    return build_tokenizer(spec.vocabulary(), name="ioi-circuit")


@pytest.mark.parametrize("templates", iit.TEMPLATE_SETS)
def test_pairs_differ_only_at_the_names_and_labels_follow_the_pos_flip(tokenizer, templates):
    pairs = iit.sample_pairs(tokenizer, 64, torch.Generator().manual_seed(3), varied_pairs=0.5,
                             templates=templates)
    again = iit.sample_pairs(tokenizer, 64, torch.Generator().manual_seed(3), varied_pairs=0.5,
                             templates=templates)
    assert torch.equal(pairs.base, again.base) and torch.equal(pairs.source, again.source)
    name_ids = {tokenizer.convert_tokens_to_ids(" " + n): i for i, n in enumerate(NAMES)}
    flips = 0
    for r in range(len(pairs.base)):
        base, src, end, s2 = pairs.base[r], pairs.source[r], int(pairs.end[r]), int(pairs.s2[r])
        pad = tokenizer.pad_token_id
        assert (base[end + 1:] == pad).all() and base[end] != pad
        diff = [int(p) for p in torch.nonzero(base != src)]
        assert len(diff) == 3 and diff[-1] == s2  # the pair's two slots, then S2
        first, second = diff[:2]
        s_b = int(base[s2])
        io_b = int(base[first]) if int(base[second]) == s_b else int(base[second])
        io_slot = first if int(base[first]) == io_b else second
        flipped = int(src[io_slot]) == int(src[s2])  # the source's S1 sits at the base's IO slot
        flips += flipped
        assert int(pairs.io[r]) == io_slot and int(pairs.s1[r]) == first + second - io_slot
        assert bool(pairs.flip[r]) == flipped
        labels = {k: int(v[r]) for k, v in pairs.labels.items()}
        assert labels["strict"] == io_b
        assert labels["inh"] == labels["dup"] == (s_b if flipped else io_b)
        src_io = int(src[second if io_slot == first else first]) if flipped else int(src[io_slot])
        assert labels["nm"] == src_io and src_io not in (io_b, s_b)
        names = torch.tensor([name_ids[t] for t in {io_b, s_b, int(src[first]), int(src[second])}])
        assert len(names) == 4
        assert not held_out(names[:, None].expand(4, 4), names[None, :].expand(4, 4)).any()
    assert 16 < flips < 48


def test_labels_agree_with_a_hand_set_circuit_and_a_wrong_map_fails():
    """ioi-planted's circuit is GPT-2's skeleton set by hand: patched where the high-level model
    says, it answers as the high-level model says. Mapping a node to a head that does not carry
    it must fail on the Pos-flipped half of the pairs."""
    from sae_bench.models.ioi_planted.model import load

    model = load()
    pairs = iit.sample_pairs(model.tokenizer, 100, torch.Generator().manual_seed(0),
                             templates="task")
    with torch.no_grad():
        _, hits = iit.interchange_loss(model, PLANTED_MAP, pairs)
        _, idle_dup = iit.interchange_loss(
            model, iit.CircuitMap(((0, 1),), PLANTED_MAP.inh, PLANTED_MAP.nm), pairs)
        _, half_inh = iit.interchange_loss(
            model, iit.CircuitMap(PLANTED_MAP.dup, ((1, 1),), PLANTED_MAP.nm), pairs)
    assert {k: hits[k] for k in iit.KINDS} == {"nm": 1.0, "inh": 1.0, "dup": 1.0, "strict": 1.0}
    # The attention each node's heads are trained to have is where the planted heads look.
    assert min(hits[f"attn_{node}"] for node in iit.ATTENDS) > 0.99
    assert idle_dup["attn_dup"] < 0.5
    one = iit.sample_pairs(model.tokenizer, 100, torch.Generator().manual_seed(0),
                           templates="task", strictness="one")
    with torch.no_grad():
        assert iit.interchange_loss(model, PLANTED_MAP, one)[1]["strict"] == 1.0
    assert idle_dup["dup"] < 0.7  # head 0.1 carries nothing: the flipped half keeps base IO
    # 1.1 moves the S token, not Pos; 1.0 left out of the map is patched by the strict term.
    assert half_inh["inh"] < 0.7 and half_inh["strict"] < 0.7


def test_patch_masks_touch_only_the_mapped_heads_at_their_roles(tokenizer):
    pairs = iit.sample_pairs(tokenizer, 8, torch.Generator().manual_seed(0))
    cmap = iit.CircuitMap(((1, 0),), ((2, 0), (2, 1)), ((3, 0), (3, 1)))
    masks = iit.patch_masks(cmap, pairs, 4, 4)
    b, rows = 8, torch.arange(8)
    nm, inh, dup, strict = (slice(k * b, (k + 1) * b) for k in range(4))
    assert masks[3][nm].sum() == 2 * b and masks[3][nm][rows, pairs.end][:, :2].all()
    assert masks[2][inh].sum() == 2 * b and masks[2][inh][rows, pairs.end][:, :2].all()
    assert masks[1][dup].sum() == b and masks[1][dup][rows, pairs.s2, 0].all()
    # Strictness: every head at every position, but the nodes at their roles.
    length = pairs.base.shape[1]
    assert masks[0][strict].all()
    assert masks[1][strict].sum() == 4 * b * length - b
    assert not masks[1][strict][rows, pairs.s2, 0].any()
    for layer in (2, 3):
        assert masks[layer][strict].sum() == 4 * b * length - 2 * b
        assert not masks[layer][strict][rows, pairs.end][:, :2].any()


@pytest.mark.parametrize("dup, inh, nm, problem", [
    ("1.0", "2.0", "4.0", "not in a 4x4 model"),
    ("1.0", "1.0", "3.0", "mapped to two nodes"),
    ("2.0", "1.0", "3.0", "layers DUP < INH < NM"),
    ("1.0", "2.x", "3.0", "LAYER.HEAD"),
])
def test_bad_circuit_maps_are_refused(dup, inh, nm, problem):
    cfg = circuit_train.TrainConfig(iit=1.0, iit_dup=dup, iit_inh=inh, iit_nm=nm)
    with pytest.raises(ValueError, match=problem):
        circuit_train.circuit_map(cfg)


def test_a_negative_attention_weight_is_refused():
    with pytest.raises(ValueError, match="--iit-attention must be >= 0"):
        circuit_train.circuit_map(circuit_train.TrainConfig(iit=1.0, iit_attention=-0.1))


def test_the_attention_term_is_the_mapped_heads_log_attention(tokenizer):
    """The loss grows by weight x mean over nodes of -log(attention to the node's key role), and
    that term trains the mapped heads' attention (a gradient reaches their queries)."""
    cfg = circuit_train.TrainConfig(n_layers=4, d_model=32, n_heads=4, attn_only=True)
    model = build(make_config(len(tokenizer), n_layers=4, d_model=32, n_heads=4, d_mlp=64,
                              n_ctx=64, model_name="ioi-circuit", attn_only=True),
                  tokenizer=tokenizer)
    init_weights_(model, torch.Generator().manual_seed(0), 0.02)
    cmap = circuit_train.circuit_map(cfg)
    pairs = iit.sample_pairs(tokenizer, 8, torch.Generator().manual_seed(1))
    off, stats = iit.interchange_loss(model, cmap, pairs)
    on, _ = iit.interchange_loss(model, cmap, pairs, attention=0.5)
    patterns: dict[int, torch.Tensor] = {}

    def keep(pattern, hook):
        patterns[hook.layer()] = pattern

    model.run_with_hooks(pairs.source, fwd_hooks=[(lambda n: n.endswith("hook_pattern"), keep)])
    attends = iit.node_attention(patterns, cmap, pairs)
    term = torch.stack([-a.log().mean() for a in attends.values()]).mean()
    assert torch.allclose(on - off, 0.5 * term, atol=1e-5)
    assert all(abs(stats[f"attn_{n}"] - float(a.mean())) < 1e-6 for n, a in attends.items())
    term.backward()
    assert model.blocks[3].attn.W_Q.grad[0].abs().sum() > 0  # name mover 3.0's query
    assert model.blocks[3].attn.W_Q.grad[3].abs().sum() == 0  # 3.3 is no node
    # With a floor, attention at or above it costs nothing and attention below it costs
    # -log(attention / floor): a floor below every head's attention adds nothing; a floor of 1
    # is the plain term.
    low = min(float(a.detach().min()) for a in attends.values()) / 2
    floored, _ = iit.interchange_loss(model, cmap, pairs, attention=0.5, floor=low)
    assert torch.allclose(floored, off, atol=1e-6)
    full, _ = iit.interchange_loss(model, cmap, pairs, attention=0.5, floor=1.0)
    assert torch.allclose(full, on, atol=1e-6)
    with pytest.raises(ValueError, match="--iit-attention-floor must be in"):
        circuit_train.circuit_map(circuit_train.TrainConfig(iit=1.0, iit_attention_floor=1.5))


def test_interchange_training_is_deterministic_and_changes_the_weights():
    cfg = circuit_train.TrainConfig(n_layers=4, d_model=32, n_heads=4, attn_only=True, steps=3,
                                    simple_steps=0, iit_batch=4, batch_size=4, iit=0.0)
    on = dataclasses.replace(cfg, iit=1.0)
    circuit_train.IIT_LAST.clear()
    first, again, off = (circuit_train.train_raw(c, progress=False)[0].state_dict()
                         for c in (on, on, cfg))
    assert set(circuit_train.IIT_LAST) == {*iit.KINDS, *(f"attn_{n}" for n in iit.ATTENDS)}
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], off[k]) for k in first)
    assert circuit_train.corpus_spec(cfg).extra_loss is None


def test_strictness_one_patches_one_drawn_head_per_pair(tokenizer):
    pairs = iit.sample_pairs(tokenizer, 64, torch.Generator().manual_seed(0), strictness="one")
    cmap = iit.CircuitMap(((1, 0),), ((2, 0), (2, 1)), ((3, 0), (3, 1)))
    masks = iit.patch_masks(cmap, pairs, 4, 4)
    strict = torch.stack([masks[layer][3 * 64:] for layer in range(4)], 1)  # [b, layer, L, head]
    length = pairs.base.shape[1]
    heads = strict.any(2).flatten(1)  # [b, layer * head]
    assert (heads.sum(1) == 1).all() and heads.any(0).sum() >= 12  # one each, most drawn
    for r in range(64):
        layer, head = divmod(int(heads[r].nonzero()), 4)
        node = (layer, head) in cmap.dup + cmap.inh + cmap.nm
        assert int(strict[r, layer, :, head].sum()) == length - node
    assert pairs.pick is not None
    assert iit.sample_pairs(tokenizer, 4, torch.Generator().manual_seed(0)).pick is None
