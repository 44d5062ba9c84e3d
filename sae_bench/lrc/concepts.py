"""The maths of linear relational concepts (see METHOD-style notes in sae_bench/lrc/README.md).

A linear relational embedding (LRE) approximates a downstream object h ∈ R^m (here the final
residual stream at END) as an affine function of a node's activation a ∈ R^w,

    h ≈ J a + b,     J = E_p[∂h/∂a (p)]   (the mean Jacobian on correctly answered prompts).

Inverting it at rank ρ (J = U S Vᵀ, J⁺_ρ = V_ρ S_ρ⁻¹ U_ρᵀ over the ρ largest singular values)
pulls a downstream vector back into the node's space. The LRC feature of attribute i, value v,
is the pulled-back class-conditional mean of the downstream object, centred like the mean
dictionary's features:

    u_{i,v} = J⁺_ρ (E[h | attr_i = v] − E[h])

(b cancels in the difference). If h = J a + b exactly, u_{i,v} = P_ρ (E[a | attr_i = v] − ā),
with P_ρ = V_ρ V_ρᵀ the projection onto the ρ input directions h is most sensitive to: at full
rank and injective J, the mean dictionary's feature; below it, the part of the feature that the
downstream computation reads.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from sae_bench.errors import UserError

# Singular values below this share of the largest are numerically zero (float64 SVD of a mean
# Jacobian estimated in float32): they do not count towards the maximal rank.
RANK_TOL = 1e-6


def max_rank(jacobian: torch.Tensor) -> int:
    """Numerical rank of `jacobian` [m, w]."""
    s = torch.linalg.svdvals(jacobian.double())
    if len(s) == 0 or float(s[0]) == 0.0:
        return 0
    return int((s > RANK_TOL * s[0]).sum())


def rank_grid(jacobian: torch.Tensor) -> list[int]:
    """Ranks swept when choosing ρ: powers of two below the numerical rank, and the rank
    itself (full-rank inversion is the LRE's plain pseudo-inverse)."""
    top = max_rank(jacobian)
    if top == 0:
        raise UserError("the downstream object does not depend on this node (its mean Jacobian "
                        "is zero), so it defines no linear relational concepts; pick a node "
                        "upstream of the answer (see `sae-bench scan`).")
    grid, r = [], 1
    while r < top:
        grid.append(r)
        r *= 2
    return [*grid, top]


def low_rank_pinv(jacobian: torch.Tensor, rank: int) -> torch.Tensor:
    """J⁺_ρ [w, m] (float64) from the `rank` largest singular values of `jacobian` [m, w]."""
    top = min(jacobian.shape)
    if not 1 <= rank <= top:
        raise UserError(f"LRC rank {rank} is out of range: the Jacobian is {jacobian.shape[0]}x"
                        f"{jacobian.shape[1]}, so the rank must be in 1..{top}.")
    u, s, vh = torch.linalg.svd(jacobian.double(), full_matrices=False)
    if float(s[rank - 1]) <= RANK_TOL * float(s[0]):
        raise UserError(f"LRC rank {rank} exceeds the Jacobian's numerical rank "
                        f"{max_rank(jacobian)}: its inverse would divide by zero; use a lower "
                        "rank.")
    return vh[:rank].T @ torch.diag(1.0 / s[:rank]) @ u[:, :rank].T


def class_means(values: torch.Tensor, labels: torch.Tensor, n_values: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-value means [n_values, m] of `values` [n, m] (float64) and which values occur."""
    v = values.double()
    counts = torch.bincount(labels, minlength=n_values).double()
    sums = torch.zeros(n_values, v.shape[1], dtype=v.dtype).index_add_(0, labels, v)
    present = counts > 0
    means = sums / counts.clamp(min=1)[:, None]
    return torch.where(present[:, None], means, torch.zeros_like(means)), present


def lrc_features(
    jacobian: torch.Tensor,
    downstream: torch.Tensor,
    labels: Mapping[str, torch.Tensor],
    n_values: Mapping[str, int],
    rank: int,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """LRC features {attribute: [n_values, w]} (float64) and which values occur {attribute:
    [n_values] bool}.

    jacobian: [m, w] mean ∂h/∂a; downstream: [n, m] the object h on the prompts whose labels
    are given ({attribute: [n] long}). A value that never occurs gets a zero feature (and is
    marked absent, as in the label-based dictionaries).
    """
    if downstream.shape[1] != jacobian.shape[0]:
        raise ValueError(f"downstream width {downstream.shape[1]} != Jacobian rows "
                         f"{jacobian.shape[0]}")
    pinv = low_rank_pinv(jacobian, rank)  # [w, m]
    centre = downstream.double().mean(0)
    features, present = {}, {}
    for attr, n in n_values.items():
        means, seen = class_means(downstream, labels[attr], n)
        pulled = (means - centre) @ pinv.T  # [n_values, w]
        features[attr] = torch.where(seen[:, None], pulled, torch.zeros_like(pulled))
        present[attr] = seen
    return features, present
