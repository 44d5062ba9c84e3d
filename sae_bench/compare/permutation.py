"""Seeded nulls for a statistic of paired rows: a permutation p-value and a random-subset
baseline.

A paired statistic is a function of a permutation π of the pairs: s(π) scores the rows of A
against the rows of B re-paired as B[π] (π = identity is the observed pairing). Under the null
hypothesis that the pairing carries no information, the observed pairing is exchangeable with
the permuted ones, so

    p = (1 + #{b : s(π_b) ≥ s(id)}) / (1 + N)

is a valid p-value (uniform on {1/(N+1), …, 1} for a continuous statistic; ties count against
the observation). The random-subset baseline asks a different question — what does the
statistic read for m latents drawn at random from each dictionary, with no matching at all?
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

PairedStatistic = Callable[[Tensor], "float | None"]
# Slack for "≥": the identity permutation, drawn again, must count as reaching the observation
# even when its float64 sums come out in another order.
_TIE = 1e-12


STREAMS = 16  # independent generator streams per seed (see `stream_generator`)


def stream_generator(seed: int, stream: int) -> torch.Generator:
    """A generator for one use (`stream` < STREAMS) of the command's seed: each statistic, the
    random decoder and the chance level draw from their own, so none moves another's numbers."""
    if not 0 <= stream < STREAMS:
        raise ValueError(f"stream {stream} out of range 0..{STREAMS - 1}")
    return torch.Generator().manual_seed((seed * STREAMS + stream) % 2**63)


@dataclass(frozen=True)
class PermutationTest:
    value: float | None
    p_value: float | None
    null_mean: float | None
    null_q95: float | None
    n_permutations: int


def permutation_test(stat: PairedStatistic, m: int, n_permutations: int,
                     generator: torch.Generator) -> PermutationTest:
    """The observed statistic, its permutation p-value and the null's mean and 95th percentile,
    from `n_permutations` re-pairings drawn with `generator`."""
    observed = stat(torch.arange(m))
    if observed is None or n_permutations == 0:
        return PermutationTest(observed, None, None, None, n_permutations)
    draws = [stat(torch.randperm(m, generator=generator)) for _ in range(n_permutations)]
    null = torch.tensor([float("nan") if v is None else v for v in draws], dtype=torch.float64)
    reached = int((null >= observed - _TIE).sum())  # NaN (undefined) never reaches
    finite = null[~null.isnan()]
    return PermutationTest(
        value=observed,
        p_value=(1 + reached) / (1 + n_permutations),
        null_mean=float(finite.mean()) if len(finite) else None,
        null_q95=float(torch.quantile(finite, 0.95)) if len(finite) else None,
        n_permutations=n_permutations,
    )


@dataclass(frozen=True)
class SubsetBaseline:
    mean: float | None
    sd: float | None
    n_draws: int


def random_subset_baseline(make_stat: Callable[[Tensor, Tensor], PairedStatistic],
                           pool_a: Tensor, pool_b: Tensor, m: int, n_draws: int,
                           generator: torch.Generator) -> SubsetBaseline:
    """The statistic on m rows drawn without replacement from each pool ([La, d], [Lb, d]) and
    paired in draw order, over `n_draws` draws."""
    values = []
    for _ in range(n_draws):
        ia = torch.randperm(len(pool_a), generator=generator)[:m]
        ib = torch.randperm(len(pool_b), generator=generator)[:m]
        v = make_stat(pool_a[ia], pool_b[ib])(torch.arange(m))
        if v is not None:
            values.append(v)
    if not values:
        return SubsetBaseline(None, None, n_draws)
    t = torch.tensor(values, dtype=torch.float64)
    sd = float(t.std()) if len(t) > 1 else None
    return SubsetBaseline(float(t.mean()), sd, n_draws)
