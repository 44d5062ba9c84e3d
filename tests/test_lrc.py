"""Linear relational concepts (sae_bench/lrc/): the maths on planted linear models, the
Jacobian against finite differences, rank-ρ inversion, invariances and bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from sae_bench.errors import UserError
from sae_bench.lrc.compare import better, row
from sae_bench.lrc.concepts import low_rank_pinv, lrc_features, max_rank, rank_grid
from sae_bench.lrc.jacobian import mean_jacobian, node_jacobian, node_to_object, suffix_to_object
from sae_bench.models.nodes import Node
from sae_bench.truth.dictionaries import fit

N_VALUES = {"X": 4, "Y": 3}


def planted(w: int = 6, seed: int = 0):
    """Activations a = base + c_X[x] + c_Y[y] over the full factorial design (every (x, y)
    pair 5 times: class means are exact), with centred concept vectors c."""
    g = torch.Generator().manual_seed(seed)
    concepts = {k: torch.randn(n, w, generator=g, dtype=torch.float64) for k, n in
                N_VALUES.items()}
    concepts = {k: c - c.mean(0) for k, c in concepts.items()}
    pairs = list(itertools.product(range(4), range(3))) * 5
    labels = {"X": torch.tensor([p[0] for p in pairs]), "Y": torch.tensor([p[1] for p in pairs])}
    base = torch.randn(w, generator=g, dtype=torch.float64)
    acts = base + concepts["X"][labels["X"]] + concepts["Y"][labels["Y"]]
    return acts, labels, concepts


def test_planted_linear_map_lrc_equals_known_concepts():
    """h = W a + b with W known and injective: the mean Jacobian is W and the LRC features at
    full rank are the planted concept vectors."""
    acts, labels, concepts = planted()
    g = torch.Generator().manual_seed(1)
    w_map = torch.randn(9, 6, generator=g, dtype=torch.float64)
    b = torch.randn(9, generator=g, dtype=torch.float64)
    jac = mean_jacobian(lambda a: a @ w_map.T + b, acts)
    torch.testing.assert_close(jac, w_map, rtol=0, atol=1e-12)
    feats, present = lrc_features(jac, acts @ w_map.T + b, labels, N_VALUES, rank=6)
    for k in N_VALUES:
        assert bool(present[k].all())
        torch.testing.assert_close(feats[k], concepts[k], rtol=0, atol=1e-10)


def test_lrc_ignores_what_the_downstream_map_cannot_see_where_labels_do_not():
    """Noise in the kernel of W (directions the downstream object ignores) moves the label-based
    mean features but not the LRC ones: at the map's rank they recover the planted concepts
    (which lie in W's row space)."""
    g = torch.Generator().manual_seed(2)
    w_map = torch.randn(3, 6, generator=g, dtype=torch.float64)  # rank 3, kernel of dim 3
    row_basis = torch.linalg.qr(w_map.T).Q  # [6, 3]
    acts, labels, _ = planted()
    concepts = {k: torch.randn(n, 3, generator=g, dtype=torch.float64) @ row_basis.T
                for k, n in N_VALUES.items()}
    concepts = {k: c - c.mean(0) for k, c in concepts.items()}
    kernel = torch.eye(6, dtype=torch.float64) - row_basis @ row_basis.T
    noise = torch.randn(len(acts), 6, generator=g, dtype=torch.float64) @ kernel
    acts = 1.0 + concepts["X"][labels["X"]] + concepts["Y"][labels["Y"]] + 3 * noise
    h = acts @ w_map.T
    assert rank_grid(w_map) == [1, 2, 3]
    feats, _ = lrc_features(w_map, h, labels, N_VALUES, rank=3)
    mean_dict = fit(acts.float(), labels, N_VALUES, "mean")
    for k in N_VALUES:
        torch.testing.assert_close(feats[k], concepts[k], rtol=0, atol=1e-10)
        assert float((mean_dict.features[k].double() - concepts[k]).abs().max()) > 0.1


def test_low_rank_inverse_is_exact_at_full_rank_and_projects_below_it():
    g = torch.Generator().manual_seed(3)
    square = torch.randn(5, 5, generator=g, dtype=torch.float64) + 5 * torch.eye(5)
    torch.testing.assert_close(low_rank_pinv(square, 5), torch.linalg.inv(square))
    tall = torch.randn(8, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(low_rank_pinv(tall, 5), torch.linalg.pinv(tall))
    # Below full rank: J⁺_ρ J is the projection onto the top-ρ right singular vectors.
    _, _, vh = torch.linalg.svd(tall)
    torch.testing.assert_close(low_rank_pinv(tall, 2) @ tall, vh[:2].T @ vh[:2])
    assert rank_grid(tall) == [1, 2, 4, 5] and max_rank(tall) == 5


def test_lrc_is_equivariant_under_a_change_of_node_basis_and_value_relabelling():
    """Re-expressing the node in another basis (a' = D a, so J' = J D⁻¹) maps the full-rank
    features by D; permuting an attribute's values permutes its features."""
    acts, labels, _ = planted()
    g = torch.Generator().manual_seed(4)
    w_map = torch.randn(6, 6, generator=g, dtype=torch.float64)
    basis = torch.randn(6, 6, generator=g, dtype=torch.float64) + 3 * torch.eye(6)
    h = acts @ w_map.T
    feats, _ = lrc_features(w_map, h, labels, N_VALUES, rank=6)
    moved, _ = lrc_features(w_map @ torch.linalg.inv(basis), h, labels, N_VALUES, rank=6)
    for k in N_VALUES:
        torch.testing.assert_close(moved[k], feats[k] @ basis.T)
    perm = torch.tensor([2, 0, 3, 1])
    relabelled = {**labels, "X": perm[labels["X"]]}
    permuted, _ = lrc_features(w_map, h, relabelled, N_VALUES, rank=6)
    torch.testing.assert_close(permuted["X"][perm], feats["X"])


def test_mean_jacobian_of_a_batch_is_the_mean_of_each_prompt_alone():
    g = torch.Generator().manual_seed(5)
    w_map = torch.randn(7, 4, generator=g, dtype=torch.float64)

    def fn(a: torch.Tensor) -> torch.Tensor:
        return torch.tanh(a @ w_map.T) * a.sum(1, keepdim=True)

    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    alone = torch.stack([torch.autograd.functional.jacobian(lambda v: fn(v[None])[0], xi)
                         for xi in x]).mean(0)
    torch.testing.assert_close(mean_jacobian(fn, x, chunk=3), alone)


@pytest.fixture(scope="module")
def tiny_model():
    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32,
                                  d_vocab=23, n_ctx=12, act_fn="gelu", normalization_type="LN",
                                  dtype=torch.float64, seed=0)
    model = HookedTransformer(cfg)
    model.eval()
    return model


@pytest.mark.parametrize("node", [Node("blocks.0.hook_resid_post", "END"),
                                  Node("blocks.0.attn.hook_z", "S2", 1),
                                  Node("blocks.1.attn.hook_v", "S2", 0),
                                  Node("blocks.1.mlp.hook_post", "END")],
                         ids=lambda n: n.name)
def test_jacobian_matches_finite_differences(tiny_model, node):
    g = torch.Generator().manual_seed(6)
    tokens = torch.randint(0, 23, (5, 9), generator=g)
    positions = {"END": torch.full((5,), 8), "S2": torch.tensor([3, 4, 5, 4, 3])}
    from sae_bench.engine.collect import node_activations

    acts = node_activations(tiny_model, tokens, positions, [node])[node].double()
    jac = node_jacobian(tiny_model, tokens, positions, node, acts, batch_size=2)
    hooked = node_to_object(tiny_model, tokens, positions, node)
    fast = suffix_to_object(tiny_model, tokens, positions, node)
    assert fast is not None
    with torch.no_grad():
        torch.testing.assert_close(fast(acts), hooked(acts))
        eps = 1e-6
        fd = torch.stack([
            ((hooked(acts + eps * e) - hooked(acts - eps * e)) / (2 * eps)).mean(0)
            for e in torch.eye(acts.shape[1], dtype=torch.float64)[:, None, :].expand(
                -1, len(acts), -1)
        ], 1)
    assert float(jac.abs().max()) > 1e-3  # the object depends on the node
    torch.testing.assert_close(jac, fd, rtol=1e-6, atol=1e-8)
    # The hook-based path (models the window forward does not reproduce) agrees.
    torch.testing.assert_close(mean_jacobian(hooked, acts).double(), jac)


def test_bad_ranks_and_unreachable_nodes_are_one_line_errors(tiny_model):
    tall = torch.randn(8, 5, dtype=torch.float64)
    for rank in (0, 6):
        with pytest.raises(UserError, match="rank must be in 1..5"):
            low_rank_pinv(tall, rank)
    with pytest.raises(UserError, match="numerical rank"):
        low_rank_pinv(torch.ones(4, 3, dtype=torch.float64), 2)
    with pytest.raises(UserError, match="does not depend on this node"):
        rank_grid(torch.zeros(4, 3))
    tokens = torch.zeros(2, 9, dtype=torch.long)
    with pytest.raises(UserError, match="roles"):
        node_to_object(tiny_model, tokens, {"S2": torch.tensor([1, 2])},
                       Node("blocks.0.hook_resid_post", "S2"))
    with pytest.raises(UserError, match="no correctly answered fit prompts"):
        node_jacobian(tiny_model, tokens[:0], {"END": torch.tensor([], dtype=torch.long)},
                      Node("blocks.0.hook_resid_post", "END"), torch.zeros(0, 16))


def test_verdict_beats_labels_but_loses_to_lrc_follows_the_metric_direction():
    assert better(0.9, 0.8, "higher") and not better(0.8, 0.9, "higher")
    assert better(1.05, 0.9, "one") and not better(1.2, 0.9, "one")
    assert better(None, 0.5, "higher") is None and better(0.1, 0.2, "none") is None
    r = row("u", None, "sufficiency", sae=1.05, labels=1.2, lrc=0.99, experimental=False)
    assert r.beats_labels and r.loses_to_lrc
    r = row("u", None, "necessity", sae=0.9, labels=0.95, lrc=0.99, experimental=False)
    assert not r.beats_labels and r.loses_to_lrc


def test_a_value_never_seen_has_no_concept():
    acts, labels, _ = planted()
    keep = labels["X"] != 2
    w_map = torch.eye(6, dtype=torch.float64)
    feats, present = lrc_features(w_map, acts[keep], {k: v[keep] for k, v in labels.items()},
                                  N_VALUES, rank=6)
    assert present["X"].tolist() == [True, True, False, True]
    assert float(feats["X"][2].abs().max()) == 0.0 and float(feats["X"][0].abs().max()) > 0
