"""Pairing latents of two dictionaries by the correlation of their activations (Lan et al. 2024).

Each alive latent of A is paired with the latent of B whose activations over the same prompts
have the highest Pearson correlation ("best match"); symmetrically for B. The counts read:
- many-to-1: B latents that are the best match of two or more A latents (with B the supervised
  dictionary: one attribute value spread over several latents — over-splitting);
- unmatched B: B latents that are nobody's best match (a supervised feature no latent tracks —
  occlusion); and the same two counts the other way round (1-to-many, unmatched A).
The 1-to-1 filter keeps, for each B latent, only the A latent that matches it best.

A latent constant over the prompts (dead, or a supervised value that never occurs in them) has
no correlation: it is left out and counted, never given a correlation of 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def alive(acts: Tensor) -> Tensor:
    """Indices of the columns of `acts` [n, L] that vary over the prompts."""
    return torch.nonzero(acts.double().std(0) > 0).flatten()


def correlations(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation [La, Lb] (float64) of the columns of a [n, La] and b [n, Lb].

    Every column must vary (see `alive`). float64: latents are sparse, and a float32 mean over
    thousands of prompts loses the digits that tell two near-identical latents apart.
    """
    za = a.double() - a.double().mean(0)
    zb = b.double() - b.double().mean(0)
    za = za / za.norm(dim=0)
    zb = zb / zb.norm(dim=0)
    return (za.T @ zb).clamp(-1.0, 1.0)


@dataclass(frozen=True)
class Matching:
    """Best matches between the alive latents of A and B; indices are original latent indices.

    Pairs of the 1-to-1 filter are in a canonical order (correlation descending, then B, then A
    index), so that relabelling the latents of either side changes no statistic computed from
    them in order (the permutation and random-subset draws included).
    """

    alive_a: Tensor  # [La'] long
    alive_b: Tensor  # [Lb'] long
    best_b: Tensor  # [La'] original index in B of each alive A latent's best match
    best_corr_a: Tensor  # [La'] float64
    best_a: Tensor  # [Lb'] original index in A of each alive B latent's best match
    best_corr_b: Tensor  # [Lb'] float64
    fan_in_b: Tensor  # [Lb'] how many A latents best-match each alive B latent
    fan_in_a: Tensor  # [La'] how many B latents best-match each alive A latent
    pairs_a: Tensor  # [m] A index of each 1-to-1 pair
    pairs_b: Tensor  # [m] B index
    pair_corr: Tensor  # [m] float64

    @property
    def many_to_one(self) -> int:
        return int((self.fan_in_b >= 2).sum())

    @property
    def one_to_many(self) -> int:
        return int((self.fan_in_a >= 2).sum())

    @property
    def unmatched_b(self) -> Tensor:
        """Original indices of alive B latents that no A latent best-matches."""
        return self.alive_b[self.fan_in_b == 0]

    @property
    def unmatched_a(self) -> Tensor:
        return self.alive_a[self.fan_in_a == 0]

    def order_a(self) -> Tensor:
        """Alive A latents in a content-defined order (best correlation descending), for draws
        that must not depend on how the latents happen to be numbered."""
        return self.alive_a[_order(self.best_corr_a, self.alive_a)]

    def order_b(self) -> Tensor:
        return self.alive_b[_order(self.best_corr_b, self.alive_b)]


def _order(values: Tensor, index: Tensor) -> Tensor:
    by_index = torch.argsort(index, stable=True)
    return by_index[torch.argsort(-values[by_index], stable=True)]


def match(a: Tensor, b: Tensor) -> Matching:
    """Best matches of the latents of a [n, La] and b [n, Lb] over the same n prompts."""
    alive_a, alive_b = alive(a), alive(b)
    if len(alive_a) == 0 or len(alive_b) == 0:
        raise ValueError("a dictionary has no latent that varies over the prompts")
    corr = correlations(a[:, alive_a], b[:, alive_b])  # [La', Lb']
    best_corr_a, jb = corr.max(1)
    best_corr_b, ia = corr.max(0)
    fan_in_b = torch.bincount(jb, minlength=len(alive_b))
    fan_in_a = torch.bincount(ia, minlength=len(alive_a))
    # 1-to-1: per B latent, the A latent that best-matches it with the highest correlation.
    keep_a: list[int] = []
    for j in torch.nonzero(fan_in_b).flatten().tolist():
        rivals = torch.nonzero(jb == j).flatten()
        keep_a.append(int(rivals[torch.argmax(best_corr_a[rivals])]))
    kept = torch.tensor(keep_a, dtype=torch.long)
    pa, pb, pc = alive_a[kept], alive_b[jb[kept]], best_corr_a[kept]
    order = sorted(range(len(kept)), key=lambda i: (-float(pc[i]), int(pb[i]), int(pa[i])))
    idx = torch.tensor(order, dtype=torch.long)
    return Matching(
        alive_a=alive_a, alive_b=alive_b,
        best_b=alive_b[jb], best_corr_a=best_corr_a,
        best_a=alive_a[ia], best_corr_b=best_corr_b,
        fan_in_b=fan_in_b, fan_in_a=fan_in_a,
        pairs_a=pa[idx], pairs_b=pb[idx], pair_corr=pc[idx],
    )


def chance_mean_max_correlation(a: Tensor, b: Tensor, generator: torch.Generator) -> float:
    """Mean over alive A latents of the best correlation with B when B's prompts are shuffled:
    the level reached by chance alone with this many prompts and latents."""
    alive_a, alive_b = alive(a), alive(b)
    shuffled = b[torch.randperm(len(b), generator=generator)][:, alive_b]
    return float(correlations(a[:, alive_a], shuffled).max(1).values.mean())
