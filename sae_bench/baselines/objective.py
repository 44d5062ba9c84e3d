"""The training objective shared by the learned baselines (steering vectors, activation scaling),
after Stoehr et al. (2024, arXiv 2410.04962): an edit should be *effective* (the target token
wins), *faithful* (the rest of the next-token distribution barely moves) and *minimal* (the
minimality term is the method's own: ℓ1 on α − 1 for scalars, ℓ2 on v for vectors).

The training loop draws mini-batches of the fit prompts with a seeded generator, so the same
seed gives the same parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sae_bench.baselines.editset import EditSet
from sae_bench.baselines.forward import end_log_probs, runner_end_logits
from sae_bench.models.nodes import Node

_MASKED = -1e9  # a finite "minus infinity": exp() is 0 and differences stay finite


def effectiveness(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean softplus(best other logit − target logit) over prompts: small once the target is
    the top-1 token with a margin. logits [b, V], target [b]."""
    rows = torch.arange(len(target))
    other = logits.clone()
    other[rows, target] = _MASKED
    return F.softplus(other.max(-1).values - logits[rows, target]).mean()


def faithfulness(logits: torch.Tensor, clean_logits: torch.Tensor, target: torch.Tensor,
                 clean_top: torch.Tensor) -> torch.Tensor:
    """Mean KL(clean ‖ edited) of the next-token distributions renormalised over every token
    but the target and the clean top-1 (the two the edit is meant to move) [scalar]."""
    rows = torch.arange(len(target))
    keep = torch.ones_like(logits, dtype=torch.bool)
    keep[rows, target] = False
    keep[rows, clean_top] = False
    p = torch.log_softmax(clean_logits.masked_fill(~keep, _MASKED), -1)
    q = torch.log_softmax(logits.masked_fill(~keep, _MASKED), -1)
    return (p.exp() * (p - q)).sum(-1).mean()


@dataclass(frozen=True)
class Settings:
    steps: int = 200
    batch: int = 128
    lr: float = 0.05
    faithfulness: float = 1.0  # weight of the faithfulness term (**choice**)
    minimality: float = 0.01  # weight of the method's size penalty (**choice**)
    seed: int = 0


# Values patched at each node for a batch: (acts, sign) -> {node: [b, width]}.
EditFn = Callable[[Mapping[Node, torch.Tensor], torch.Tensor], Mapping[Node, torch.Tensor]]


def train(fit_set: EditSet, params: list[torch.Tensor], edit: EditFn,
          penalty: Callable[[], torch.Tensor], settings: Settings) -> list[float]:
    """Adam on `params` (in place) for effectiveness + faithfulness + penalty on the fit prompts;
    the loss per step."""
    nodes = list(fit_set.nodes)
    sign = fit_set.sign()
    # The clean distribution the faithfulness term compares with (log-probabilities: the
    # renormalised softmax is the same as from logits).
    clean = end_log_probs(fit_set.runner, {})
    opt = torch.optim.Adam(params, lr=settings.lr)
    g = torch.Generator().manual_seed(settings.seed)
    losses = []
    for _ in range(settings.steps):
        idx = torch.randperm(len(fit_set), generator=g)[: settings.batch]
        values = edit({n: fit_set.acts[n][idx] for n in nodes}, sign[idx])
        logits = runner_end_logits(fit_set.runner, values, idx)
        target = fit_set.target[idx]
        loss = (effectiveness(logits, target)
                + settings.faithfulness * faithfulness(logits, clean[idx], target,
                                                       fit_set.clean_top[idx])
                + settings.minimality * penalty())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
