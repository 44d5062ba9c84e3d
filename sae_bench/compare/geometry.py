"""Geometry of matched pairs: direct cosine, SVCCA and RSA of the paired decoder directions, each
with its permutation test, random-subset baseline and a random-decoder reference.

Decoder directions are scaled to unit norm first: a latent's scale is arbitrary (rescaling a
latent and its decoder row leaves the SAE unchanged), and SVCCA, unlike cosine and RSA, would
otherwise weigh large rows more. Direct cosine compares the two directions of a pair in the one
activation space both dictionaries live in; SVCCA and RSA would also compare across bases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sae_bench.compare.permutation import (
    PairedStatistic,
    PermutationTest,
    SubsetBaseline,
    permutation_test,
    random_subset_baseline,
    stream_generator,
)
from sae_bench.compare.rsa import cosine_similarity_matrix, pearson, rank_matrix, upper_triangle
from sae_bench.compare.svcca import canonical_correlations, reduced_basis

STATISTICS = ("cosine", "svcca", "rsa")


def unit_rows(w: Tensor) -> Tensor:
    w = w.double()
    norms = w.norm(dim=1, keepdim=True)
    return w / torch.where(norms > 0, norms, torch.ones_like(norms))


def cosine_statistic(x: Tensor, y: Tensor) -> PairedStatistic:
    ux, uy = unit_rows(x), unit_rows(y)
    return lambda perm: float((ux * uy[perm]).sum(1).mean())


def svcca_statistic(x: Tensor, y: Tensor) -> PairedStatistic:
    # Row-permuting y permutes the rows of its basis and nothing else (centring is per column).
    bx, by = reduced_basis(unit_rows(x)), reduced_basis(unit_rows(y))
    if bx.shape[1] == 0 or by.shape[1] == 0:
        return lambda perm: None
    return lambda perm: float(canonical_correlations(bx, by[perm]).mean())


def rsa_statistic(x: Tensor, y: Tensor) -> PairedStatistic:
    m = x.shape[0]
    if m < 3:
        return lambda perm: None
    rows, cols = upper_triangle(m)
    rx = rank_matrix(cosine_similarity_matrix(x))[rows, cols]
    ry = rank_matrix(cosine_similarity_matrix(y))
    return lambda perm: pearson(rx, ry[perm][:, perm][rows, cols])


_MAKERS = {"cosine": cosine_statistic, "svcca": svcca_statistic, "rsa": rsa_statistic}


@dataclass(frozen=True)
class GeometryOutcome:
    name: str
    test: PermutationTest
    subsets: SubsetBaseline
    random_decoder: PermutationTest
    components: tuple[int, int] | None  # SVCCA's kept components (A, B)
    random_decoder_components: tuple[int, int] | None  # the same with the random decoder


def components(x: Tensor, y: Tensor) -> tuple[int, int]:
    return reduced_basis(unit_rows(x)).shape[1], reduced_basis(unit_rows(y)).shape[1]


def geometry(pairs_a: Tensor, pairs_b: Tensor, pool_a: Tensor, pool_b: Tensor,
             random: Tensor, randomize: str, *, n_permutations: int, n_subsets: int,
             seed: int) -> list[GeometryOutcome]:
    """Each statistic on the matched directions pairs_a [m, d], pairs_b [m, d] (row k of each is
    pair k), its random-subset baseline from the alive directions pool_a, pool_b, and the same
    test with side `randomize`'s ("a" or "b") directions replaced by `random` [m, d] (the
    random-decoder reference: same pairs, same activations, a decoder that knows nothing).

    Every statistic draws from its own stream (`stream_generator(seed, position)`), so adding
    or dropping one statistic moves no other's numbers."""
    m = pairs_a.shape[0]
    out = []
    for i, name in enumerate(STATISTICS):
        make = _MAKERS[name]
        gen = stream_generator(seed, i)
        test = permutation_test(make(pairs_a, pairs_b), m, n_permutations, gen)
        subsets = random_subset_baseline(make, pool_a, pool_b, m, n_subsets, gen)
        ra, rb = (random, pairs_b) if randomize == "a" else (pairs_a, random)
        reference = permutation_test(make(ra, rb), m, n_permutations, gen)
        svcca = name == "svcca"
        out.append(GeometryOutcome(name, test, subsets, reference,
                                   components(pairs_a, pairs_b) if svcca else None,
                                   components(ra, rb) if svcca else None))
    return out
