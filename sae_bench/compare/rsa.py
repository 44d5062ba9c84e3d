"""Representational similarity analysis of paired vectors (Kriegeskorte et al. 2008; Lan et al.).

Each side's m paired vectors give an m×m cosine-similarity matrix; RSA is the Spearman rank
correlation of the two matrices' upper triangles (diagonal excluded). Cosine makes it blind to a
latent's scale and to any rotation of either space (tests/test_compare_maths.py).

For the permutation null the ranks are computed once: re-pairing the rows of B by a permutation
π only rearranges the entries of its upper triangle, so their ranks are R_B[π_i, π_j].
"""

from __future__ import annotations

import torch
from scipy.stats import rankdata
from torch import Tensor


def cosine_similarity_matrix(w: Tensor) -> Tensor:
    """[m, m] cosine similarities (float64) of the rows of w [m, d]; zero rows give 0."""
    w = w.double()
    norms = w.norm(dim=1, keepdim=True)
    unit = w / torch.where(norms > 0, norms, torch.ones_like(norms))
    return unit @ unit.T


def upper_triangle(m: int) -> tuple[Tensor, Tensor]:
    rows, cols = torch.triu_indices(m, m, offset=1)
    return rows, cols


def rank_matrix(sim: Tensor) -> Tensor:
    """[m, m] symmetric matrix of the average ranks (ties share a rank) of sim's upper-triangle
    entries among themselves; the diagonal is 0."""
    m = sim.shape[0]
    rows, cols = upper_triangle(m)
    ranks = torch.from_numpy(rankdata(sim[rows, cols].numpy(), method="average")).double()
    out = torch.zeros(m, m, dtype=torch.float64)
    out[rows, cols] = ranks
    out[cols, rows] = ranks
    return out


def pearson(x: Tensor, y: Tensor) -> float | None:
    """Pearson correlation of two vectors; None when either is constant."""
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    denom = float(x.norm() * y.norm())
    return None if denom == 0 else float(x @ y) / denom


def rsa(x: Tensor, y: Tensor) -> float | None:
    """Spearman correlation of the upper triangles of the cosine-similarity matrices of paired
    rows x [m, d_x], y [m, d_y]; None with fewer than 3 pairs (one or no entry to rank)."""
    m = x.shape[0]
    if m < 3:
        return None
    rows, cols = upper_triangle(m)
    rx = rank_matrix(cosine_similarity_matrix(x))
    ry = rank_matrix(cosine_similarity_matrix(y))
    return pearson(rx[rows, cols], ry[rows, cols])
