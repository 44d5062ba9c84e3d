"""The maths of `sae-bench compare` (sae_bench/compare/): SVCCA, RSA, the permutation null,
matching counts, and the invariances a correspondence statistic must have."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import kstest

from sae_bench.compare.geometry import (
    cosine_statistic,
    geometry,
    rsa_statistic,
    svcca_statistic,
    unit_rows,
)
from sae_bench.compare.matching import chance_mean_max_correlation, match
from sae_bench.compare.permutation import permutation_test, random_subset_baseline
from sae_bench.compare.rsa import rsa
from sae_bench.compare.svcca import canonical_correlations, n_components, reduced_basis, svcca


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def orthogonal(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


# ---------------------------------------------------------------------------------- SVCCA
def test_svcca_of_a_rotated_copy_is_one():
    x = torch.randn(200, 20, generator=gen(1), dtype=torch.float64)
    out = svcca(x, x @ orthogonal(20, 2))
    assert out.value == pytest.approx(1.0, abs=1e-9)
    assert out.components_x == out.components_y > 1


def test_svcca_of_unrelated_sets_is_far_below_one():
    x = torch.randn(400, 10, generator=gen(3), dtype=torch.float64)
    y = torch.randn(400, 10, generator=gen(4), dtype=torch.float64)
    assert svcca(x, y).value < 0.3


def test_truncation_keeps_the_components_explaining_99_percent():
    # s² shares 0.50, 0.30, 0.15, 0.045, 0.003, 0.002: 99% needs four components, not one.
    s = torch.tensor([50.0, 30.0, 15.0, 4.5, 0.3, 0.2], dtype=torch.float64).sqrt()
    assert n_components(s) == 4
    assert n_components(s, keep=0.4) == 1 and n_components(s, keep=1.0) == 6
    # exactly 99% after four components (float64): the fourth is enough
    exact = torch.tensor([50.0, 30.0, 15.0, 4.0, 0.5, 0.5], dtype=torch.float64).sqrt()
    assert n_components(exact) == 4
    assert n_components(torch.zeros(3)) == 0


def test_svcca_with_one_shared_component_is_not_one():
    """The bug in a common implementation: keeping one component. Here x and y share only their
    largest component; the others are unrelated. One component would read SVCCA = 1."""
    n = 500
    shared = 5 * torch.randn(n, 1, generator=gen(5), dtype=torch.float64)
    x = torch.cat([shared, torch.randn(n, 4, generator=gen(6), dtype=torch.float64)], 1)
    y = torch.cat([shared, torch.randn(n, 4, generator=gen(7), dtype=torch.float64)], 1)
    one = canonical_correlations(reduced_basis(x, keep=0.5), reduced_basis(y, keep=0.5))
    assert one.numel() == 1 and float(one[0]) == pytest.approx(1.0, abs=1e-4)
    proper = svcca(x, y)
    assert proper.components_x == proper.components_y == 5
    assert proper.value < 0.35  # (1 + four near-zero correlations) / 5: measured 0.267


# ------------------------------------------------------------------------------------ RSA
def test_rsa_is_rotation_and_scale_invariant():
    x = torch.randn(40, 8, generator=gen(8), dtype=torch.float64)
    y = x + 0.5 * torch.randn(40, 8, generator=gen(9), dtype=torch.float64)
    base = rsa(x, y)
    assert 0.3 < base < 0.99
    scales = torch.rand(40, 1, generator=gen(10), dtype=torch.float64) + 0.1
    assert rsa(x @ orthogonal(8, 11), y) == pytest.approx(base, abs=1e-9)
    assert rsa(x, y @ orthogonal(8, 12)) == pytest.approx(base, abs=1e-9)
    assert rsa(x * scales, y) == pytest.approx(base, abs=1e-9)
    assert rsa(x, x) == pytest.approx(1.0)
    assert rsa(x[:2], y[:2]) is None  # one pair of pairs: nothing to rank


def test_rsa_permutation_statistic_equals_recomputing():
    x = torch.randn(15, 4, generator=gen(13), dtype=torch.float64)
    y = torch.randn(15, 4, generator=gen(14), dtype=torch.float64)
    perm = torch.randperm(15, generator=gen(15))
    assert rsa_statistic(x, y)(perm) == pytest.approx(rsa(x, y[perm]), abs=1e-12)
    # SVCCA's statistic reads unit-norm rows (a latent's scale is arbitrary)
    expected = svcca(unit_rows(x), unit_rows(y)[perm]).value
    assert svcca_statistic(x, y)(perm) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------- permutation null
def _null_p_values(make, n_sims: int, seed: int, related: bool = False) -> torch.Tensor:
    g = gen(seed)
    out = []
    for _ in range(n_sims):
        x = torch.randn(12, 5, generator=g, dtype=torch.float64)
        noise = torch.randn(12, 5, generator=g, dtype=torch.float64)
        y = x + noise if related else noise
        out.append(permutation_test(make(x, y), 12, 99, g).p_value)
    return torch.tensor(out)


@pytest.mark.parametrize("make", [cosine_statistic, rsa_statistic, svcca_statistic],
                         ids=["cosine", "rsa", "svcca"])
def test_permutation_p_value_is_uniform_under_the_null(make):
    p = _null_p_values(make, 300, seed=16)
    assert kstest(p.numpy(), "uniform").pvalue > 0.01
    # Binned: each fifth of [0, 1] holds 60 of 300 p-values up to sampling noise (sd ~7).
    counts = torch.histc(p, bins=5, min=0.0, max=1.0)
    assert bool(((counts - 60).abs() < 25).all()), counts
    assert float((p <= 0.05).float().mean()) < 0.1


def test_the_uniformity_check_rejects_related_pairs():
    """The same check on pairs that do correspond: p-values pile up near 0 and KS rejects, so
    the uniformity test above can fail."""
    p = _null_p_values(cosine_statistic, 100, seed=17, related=True)
    assert kstest(p.numpy(), "uniform").pvalue < 1e-6
    assert float((p <= 0.05).float().mean()) > 0.8


def test_random_subset_baseline_of_unrelated_pools_is_near_zero():
    a = torch.randn(300, 16, generator=gen(18), dtype=torch.float64)
    b = torch.randn(300, 16, generator=gen(19), dtype=torch.float64)
    base = random_subset_baseline(cosine_statistic, a, b, 50, 40, gen(20))
    assert abs(base.mean) < 0.02 and base.sd is not None and base.sd < 0.05


# ------------------------------------------------------------------------------- matching
def planted() -> tuple[torch.Tensor, torch.Tensor]:
    """B: three indicator features over 600 prompts. A: latents 0 and 1 are noisy copies of
    feature 0 (split), latent 2 of feature 1, latent 3 is noise; feature 2 has no copy."""
    g = gen(21)
    labels = torch.randint(0, 3, (600,), generator=g)
    b = torch.nn.functional.one_hot(labels, 3).double()
    noise = 0.1 * torch.rand(600, 4, generator=g, dtype=torch.float64)
    a = noise.clone()
    a[:, 0] += b[:, 0]
    a[:, 1] += 2 * b[:, 0]
    a[:, 2] += b[:, 1]
    a[:, 3] = torch.rand(600, generator=g, dtype=torch.float64)
    return a, b


def test_matching_counts_splitting_and_occlusion():
    a, b = planted()
    m = match(a, b)
    assert m.best_b[:3].tolist() == [0, 0, 1]
    assert m.many_to_one == 1 and int(m.fan_in_b.max()) >= 2  # feature 0: split over 2 latents
    assert m.unmatched_b.tolist() == [2]  # nobody tracks feature 2: occluded
    assert len(m.pair_corr) == len(set(m.pairs_b.tolist())) == len(set(m.pairs_a.tolist()))
    assert 0 in m.pairs_b.tolist() and 1 in m.pairs_b.tolist()
    # the 1-to-1 filter keeps the better copy of feature 0 and drops the other
    kept_for_0 = m.pairs_a[m.pairs_b == 0].tolist()
    assert len(kept_for_0) == 1 and kept_for_0[0] == int(torch.argmax(m.best_corr_a[:2]))


def test_dead_latents_are_left_out_not_scored_zero():
    a, b = planted()
    a = torch.cat([a, torch.zeros(600, 2, dtype=torch.float64)], 1)
    m = match(a, b)
    assert m.alive_a.tolist() == [0, 1, 2, 3]


def test_self_match_and_geometry_give_one():
    g = gen(22)
    acts = torch.relu(torch.randn(500, 30, generator=g, dtype=torch.float64))
    dirs = torch.randn(30, 16, generator=g, dtype=torch.float64)
    m = match(acts, acts)
    assert float(m.best_corr_a.mean()) == pytest.approx(1.0)
    assert float(m.pair_corr.mean()) == pytest.approx(1.0) and len(m.pair_corr) == 30
    assert m.many_to_one == 0 and len(m.unmatched_b) == 0
    out = geometry(dirs[m.pairs_a], dirs[m.pairs_b], dirs, dirs, torch.randn(30, 16, generator=g),
                   "a", n_permutations=50, n_subsets=5, seed=0)
    for o in out:
        assert o.test.value == pytest.approx(1.0, abs=1e-9), o.name
        assert o.test.p_value == pytest.approx(1 / 51), o.name
        assert o.random_decoder.value < 0.9, o.name


def _compare_numbers(acts_a, acts_b, dirs_a, dirs_b):
    m = match(acts_a, acts_b)
    out = geometry(dirs_a[m.pairs_a], dirs_b[m.pairs_b], dirs_a[m.order_a()],
                   dirs_b[m.order_b()], torch.randn(len(m.pair_corr), dirs_a.shape[1],
                                                    generator=gen(0), dtype=torch.float64),
                   "a", n_permutations=30, n_subsets=5, seed=3)
    return ([float(m.best_corr_a.mean()), float(m.pair_corr.mean()), m.many_to_one,
             len(m.unmatched_b), m.one_to_many, len(m.unmatched_a)],
            [(o.test.value, o.test.p_value, o.subsets.mean, o.random_decoder.value)
             for o in out])


def test_relabelling_and_rescaling_latents_changes_nothing():
    g = gen(23)
    acts_a = torch.relu(torch.randn(400, 40, generator=g, dtype=torch.float64) - 0.5)
    mix = torch.randn(40, 25, generator=g, dtype=torch.float64)
    acts_b = torch.relu(acts_a @ mix + 0.3 * torch.randn(400, 25, generator=g,
                                                         dtype=torch.float64))
    dirs_a = torch.randn(40, 12, generator=g, dtype=torch.float64)
    dirs_b = torch.randn(25, 12, generator=g, dtype=torch.float64)
    base = _compare_numbers(acts_a, acts_b, dirs_a, dirs_b)
    perm = torch.randperm(40, generator=g)
    scale = torch.rand(40, generator=g, dtype=torch.float64) * 5 + 0.2
    moved = _compare_numbers(acts_a[:, perm] * scale, acts_b, dirs_a[perm] / scale[:, None],
                             dirs_b)
    assert moved[0] == pytest.approx(base[0], abs=1e-9)
    for x, y in zip(moved[1], base[1], strict=True):
        assert x == pytest.approx(y, abs=1e-9)


def test_chance_correlation_falls_with_more_prompts():
    def chance(n):
        g = gen(24)
        a = torch.relu(torch.randn(n, 50, generator=g))
        b = torch.relu(torch.randn(n, 50, generator=g))
        return chance_mean_max_correlation(a, b, g)
    assert chance(100) > 0.2 > 0.1 > chance(5000)
