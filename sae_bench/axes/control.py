"""Control axis (METHOD §4): can the model be steered by editing a few features?

The target of an edit is the model's top-1 token when the nodes are patched with the
counterfactual prompt's activations; an edit succeeds on a prompt when the edited run's top-1
token equals that target.
"""

from __future__ import annotations

import torch

# An attribute is causally relevant at a cross-section when patching the counterfactual
# activations changes the model's top-1 prediction on at least this share of prompts (**choice**,
# written in the task card): below it, "edit accuracy" mostly measures doing nothing.
RELEVANCE_MIN_CHANGED = 0.5


def agreement(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of prompts whose top-1 token equals the target ([n] each)."""
    return float((predicted == target).float().mean())


def causally_relevant(no_intervention_agreement: float) -> bool:
    return (1.0 - no_intervention_agreement) >= RELEVANCE_MIN_CHANGED
