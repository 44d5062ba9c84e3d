"""Occlusion and over-splitting diagnostics on synthetic tensors (no model, no SAE)."""

from __future__ import annotations

import pytest
import torch

from sae_bench.axes.occlusion import linear_decodability, name_coverage, occlusion
from sae_bench.axes.oversplitting import mean_pairwise_jaccard, oversplitting


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- linear probe ---------------------------------------------------------------------------


def _embedded(n: int, n_values: int, d: int, noise: float, seed: int):
    g = _gen(seed)
    labels = torch.randint(n_values, (n,), generator=g)
    emb = torch.randn(n_values, d, generator=_gen(123))  # same embedding for train and test
    acts = emb[labels] + noise * torch.randn(n, d, generator=g)
    return acts, labels


def test_probe_decodes_embedded_labels():
    xa, ya = _embedded(2000, 10, 32, 0.3, seed=0)
    xb, yb = _embedded(1000, 10, 32, 0.3, seed=1)
    assert linear_decodability(xa, ya, xb, yb, 10) > 0.98


def test_probe_on_noise_is_chance():
    g = _gen(2)
    xa, xb = torch.randn(2000, 32, generator=g), torch.randn(2000, 32, generator=g)
    ya, yb = torch.randint(10, (2000,), generator=g), torch.randint(10, (2000,), generator=g)
    acc = linear_decodability(xa, ya, xb, yb, 10)
    assert 0.05 < acc < 0.16


def test_probe_never_predicts_unseen_values():
    xa, ya = _embedded(500, 3, 8, 0.1, seed=3)  # values 0..2 only, but n_values = 5
    xb, yb = _embedded(200, 3, 8, 0.1, seed=4)
    assert linear_decodability(xa, ya, xb, yb, 5) > 0.98


# --- coverage and occlusion -----------------------------------------------------------------


def test_name_coverage_fraction_of_present_values():
    labels = torch.arange(10).repeat(30)  # 10 values present (n_values = 12: two absent)
    latents = torch.zeros(len(labels), 4)
    for j in range(4):  # latents match values 0..3 exactly
        latents[labels == j, j] = 1.0
    assert name_coverage(latents, labels, 12) == pytest.approx(0.4)


def test_occlusion_flags_hidden_attribute():
    cov = {"IO": 1.0, "S": 0.1}
    (io, s) = occlusion(cov, {"IO": 0.6, "S": 0.41}, {"IO": 0.99, "S": 0.95})
    assert not io.occluded and io.occluded_by is None
    assert s.occluded and s.occluded_by == "IO"
    assert s.coverage == 0.1 and s.causally_relevant and s.decodability == 0.95
    assert s.ld_effect == 0.41
    assert "41%" in s.evidence and "100%" in s.evidence and "0.95" in s.evidence


@pytest.mark.parametrize(
    ("cov", "rel", "dec"),
    [
        ({"IO": 1.0, "S": 0.1}, {"IO": 0.5, "S": 0.05}, {"IO": 0.99, "S": 0.95}),  # irrelevant
        ({"IO": 1.0, "S": 0.1}, {"IO": 0.5, "S": 0.5}, {"IO": 0.99, "S": 0.3}),  # not decodable
        ({"IO": 1.0, "S": 0.9}, {"IO": 0.5, "S": 0.5}, {"IO": 0.99, "S": 0.95}),  # both covered
        ({"IO": 0.6, "S": 0.1}, {"IO": 0.5, "S": 0.5}, {"IO": 0.99, "S": 0.95}),  # none high
    ],
)
def test_occlusion_not_flagged(cov, rel, dec):
    verdicts = occlusion(cov, rel, dec)
    assert [v.attribute for v in verdicts] == list(cov)
    assert not any(v.occluded for v in verdicts)
    assert all(v.occluded_by is None and v.evidence for v in verdicts)


def test_occluded_by_best_covered_other():
    cov = {"A": 0.85, "B": 0.95, "C": 0.0}
    verdicts = occlusion(cov, dict.fromkeys(cov, 1.0), dict.fromkeys(cov, 1.0))
    assert [v.occluded_by for v in verdicts] == [None, None, "B"]


# --- over-splitting -------------------------------------------------------------------------


def _pos_split():
    """800 prompts, Pos alternating 0/1. Latents 0..7 each fire on a disjoint eighth of the Pos=0
    prompts; latent 8 fires on every Pos=1 prompt; latent 9 fires on Pos=0 eighth 0 plus
    16 Pos=1 prompts (precision ≈ 0.76 for Pos=0: excluded); latent 10 never fires."""
    n = 800
    labels = torch.arange(n) % 2
    lat = torch.zeros(n, 11)
    zeros = torch.nonzero(labels == 0).flatten()  # 400 prompts
    for j, chunk in enumerate(zeros.chunk(8)):
        lat[chunk, j] = torch.rand(len(chunk), generator=_gen(j)) + 0.1
    lat[labels == 1, 8] = 2.0
    ones = torch.nonzero(labels == 1).flatten()
    lat[zeros.chunk(8)[0], 9] = 1.0
    lat[ones[:16], 9] = 1.0  # 50 on Pos=0, 16 on Pos=1: precision 50/66 ≈ 0.76
    return lat, labels


def test_oversplitting_flags_spread_value():
    lat, labels = _pos_split()
    r0, r1 = oversplitting(lat, labels, ("first", "second"), "Pos")
    assert (r0.attribute, r0.value) == ("Pos", "first")
    assert sorted(r0.latents) == list(range(8)) and r0.count == 8  # latent 9 excluded
    assert r0.union_recall == pytest.approx(1.0)
    assert r0.best_single_recall == pytest.approx(1 / 8)
    assert r0.mean_pairwise_jaccard == pytest.approx(0.0)
    assert r0.split

    assert r1.latents == [8] and r1.count == 1
    assert r1.best_single_recall == pytest.approx(1.0) and r1.union_recall == pytest.approx(1.0)
    assert r1.mean_pairwise_jaccard is None and not r1.split


def test_oversplitting_needs_union_coverage_and_orders_by_recall():
    lat, labels = _pos_split()
    lat[:, 2:8] = 0  # 2 fragments: union recall < 0.8 -> no split
    lat[torch.nonzero(labels == 0).flatten()[100:150], 1] = 1.0  # latent 1 now has recall 0.25
    (r0, _) = oversplitting(lat, labels, ("first", "second"), "Pos")
    assert r0.latents == [1, 0] and r0.count == 2
    assert r0.best_single_recall == pytest.approx(0.25)
    assert r0.union_recall == pytest.approx(0.375)
    assert not r0.split


def test_mean_pairwise_jaccard():
    a = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=torch.bool)
    # pairs: (0,1) 1/3, (0,2) 0/4, (1,2) 1/3
    assert mean_pairwise_jaccard(a) == pytest.approx((1 / 3 + 0 + 1 / 3) / 3)
    assert mean_pairwise_jaccard(a[:, :1]) is None
