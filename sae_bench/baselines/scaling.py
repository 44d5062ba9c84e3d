"""Activation scaling (Stoehr et al. 2024, arXiv 2410.04962): one learned scalar per site.

A site is a node of the cross-section (one head's output or query, or one residual stream):
a_n ↦ α_n·a_n, the same α_n for every prompt, so it can strengthen, weaken or reverse what
the site already writes but not add anything new. Trained on fit prompts with
`objective.train` (effective, faithful) plus minimality, λ·Σ|α_n − 1|. The sites whose |α − 1|
comes out large are the ones the edit needs: `localisation` ranks them, a check against the
circuit heads that needs no SAE. A name swap cannot be done this way: one scalar per site
cannot tell which name to bring in.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from sae_bench.baselines.editset import EditSet
from sae_bench.baselines.objective import Settings, train
from sae_bench.models.nodes import Node


def scaling_edit(acts: Mapping[Node, torch.Tensor],
                 alphas: Mapping[Node, torch.Tensor]) -> dict[Node, torch.Tensor]:
    """{node: α·a} for acts [n, width] and scalars {node: [] tensor}."""
    return {n: alphas[n] * acts[n] for n in alphas}


def train_scaling(fit_set: EditSet, settings: Settings) -> dict[Node, torch.Tensor]:
    """The learned scalar of each node {node: [] float32}, starting from 1 (no edit)."""
    nodes = list(fit_set.nodes)
    alpha = {n: torch.ones((), requires_grad=True) for n in nodes}

    def edit(acts, sign):
        return scaling_edit(acts, alpha)

    def penalty() -> torch.Tensor:
        return sum(((alpha[n] - 1).abs() for n in nodes), torch.zeros(()))

    train(fit_set, list(alpha.values()), edit, penalty, settings)
    return {n: alpha[n].detach().clone() for n in nodes}


def localisation(alphas: Mapping[Node, torch.Tensor]) -> list[tuple[Node, float]]:
    """(node, α) with the largest |α − 1| first (ties in node order): where the edit acts."""
    return sorted(((n, float(a)) for n, a in alphas.items()),
                  key=lambda item: (-abs(item[1] - 1.0), item[0]))
