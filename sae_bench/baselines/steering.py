"""Steering vector: one learned vector per node for a binary edit (d parameters per node).

Edit: a ↦ a + σ(p)·v with σ = +1 when the prompt's binary attribute goes from value 0 to 1 and
−1 the other way (one vector flips both ways, as the binary DiffMean does). Trained on the fit
prompts with `objective.train`: the target token wins, the rest of the distribution stays, and
a small ℓ2 penalty on v. A name swap has no such vector: the direction depends on which name
goes out and which comes in (see `diffmean`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from sae_bench.baselines.editset import EditSet
from sae_bench.baselines.objective import Settings, train
from sae_bench.models.nodes import Node


def _spread(acts: torch.Tensor) -> torch.Tensor:
    """Root-mean-square deviation of a node's coordinates from their mean [scalar]: the vector is
    learned in these units, so one learning rate suits nodes of any scale."""
    return (acts - acts.mean(0)).pow(2).mean().sqrt().clamp(min=1e-6)


def steering_edit(acts: Mapping[Node, torch.Tensor], sign: torch.Tensor,
                  vectors: Mapping[Node, torch.Tensor]) -> dict[Node, torch.Tensor]:
    """{node: a + σ·v} for acts [n, width], sign [n], vectors {node: [width]}."""
    return {n: acts[n] + sign[:, None] * vectors[n] for n in vectors}


def train_steering(fit_set: EditSet, settings: Settings) -> dict[Node, torch.Tensor]:
    """The learned vector of each node {node: [width]} (float32, detached)."""
    nodes = list(fit_set.nodes)
    unit = {n: _spread(fit_set.acts[n]) for n in nodes}
    w = {n: torch.zeros(fit_set.acts[n].shape[1], requires_grad=True) for n in nodes}

    def edit(acts, sign):
        return steering_edit(acts, sign, {n: unit[n] * w[n] for n in nodes})

    def penalty() -> torch.Tensor:
        return sum((w[n].pow(2).mean() for n in nodes), torch.zeros(()))

    train(fit_set, list(w.values()), edit, penalty, settings)
    return {n: (unit[n] * w[n]).detach().clone() for n in nodes}
