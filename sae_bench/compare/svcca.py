"""SVCCA between two sets of paired vectors (Raghu et al. 2017; as used by Lan et al. 2024).

Rows are the m paired latents (samples), columns the activation-space dimensions. Each side is
centred over the rows and reduced by SVD to its top k components, k the fewest that explain
`VARIANCE_KEPT` (99%) of its variance; SVCCA is the mean of the min(k_x, k_y) canonical
correlations between the two reduced sides. With the reduced side written X_k = U_k S_k, the
span is that of U_k, so the canonical correlations are the singular values of U_kx^T U_ky.

The truncation is the point: Lan et al.'s public code keeps one component where it meant to keep
99% of the variance, which reduces SVCCA to one correlation. `n_components` is tested on a
spectrum that needs several (tests/test_compare_maths.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

VARIANCE_KEPT = 0.99
# Singular values below this fraction of the largest are numerical zeros (rank deficiency).
_RANK_TOL = 1e-10


def n_components(singular_values: Tensor, keep: float = VARIANCE_KEPT) -> int:
    """Fewest leading components whose share of the variance (sum of s²) reaches `keep`."""
    var = singular_values.double() ** 2
    total = float(var.sum())
    if total <= 0:
        return 0
    share = torch.cumsum(var, 0) / total
    # The relative slack keeps a spectrum whose share is exactly `keep` in float64 at k.
    return int(torch.searchsorted(share, torch.tensor([keep - 1e-12], dtype=share.dtype))) + 1


def reduced_basis(x: Tensor, keep: float = VARIANCE_KEPT) -> Tensor:
    """U_k [m, k] (float64): orthonormal basis of x's top-k centred components, x [m, d]."""
    centred = x.double() - x.double().mean(0)
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    s = torch.where(s > _RANK_TOL * s.max().clamp(min=1e-300), s, torch.zeros_like(s))
    return u[:, : n_components(s, keep)]


def canonical_correlations(ux: Tensor, uy: Tensor) -> Tensor:
    """The min(k_x, k_y) canonical correlations of two orthonormal bases [m, k_x], [m, k_y]."""
    return torch.linalg.svdvals(ux.T @ uy).clamp(0.0, 1.0)


@dataclass(frozen=True)
class SVCCA:
    value: float | None  # None when a side has no variance
    components_x: int
    components_y: int


def svcca(x: Tensor, y: Tensor, keep: float = VARIANCE_KEPT) -> SVCCA:
    """SVCCA of paired rows x [m, d_x], y [m, d_y]."""
    ux, uy = reduced_basis(x, keep), reduced_basis(y, keep)
    if ux.shape[1] == 0 or uy.shape[1] == 0:
        return SVCCA(None, ux.shape[1], uy.shape[1])
    return SVCCA(float(canonical_correlations(ux, uy).mean()), ux.shape[1], uy.shape[1])
