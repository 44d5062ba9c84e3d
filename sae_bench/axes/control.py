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


BUDGETS = (1, 2, 4, 8, 16, 32)


def greedy_order(
    alpha: torch.Tensor, beta: torch.Tensor, directions: torch.Tensor, delta: torch.Tensor,
    k_max: int = max(BUDGETS),
) -> torch.Tensor:
    """Interpretation-agnostic SAE edit (METHOD §4), for every prompt at once.

    Candidate deltas δ_j = (β_j − α_j)·d_j (latents on the counterfactual minus on the base prompt,
    times decoder direction d_j); greedily add the δ_j that most reduces ‖Σδ − Δ‖₂ where
    Δ = a_cf − a_base is the actual activation difference. Returns the chosen latents per step
    [n, k_max] (−1 once no candidate reduces the error); the edit with budget k uses the first k.

    alpha, beta [n, d_sae]; directions [d_sae, d] in activation space; delta [n, d]. A scalar input
    normalisation scales every term of the objective alike, so choosing in activation space is
    the same as choosing in the SAE's own normalised space.
    """
    n = alpha.shape[0]
    coef = (beta - alpha).double()  # [n, d_sae]
    dirs = directions.double()
    sq_norm = (dirs**2).sum(1)  # [d_sae]
    resid = delta.double().clone()
    available = coef != 0
    order = torch.full((n, k_max), -1, dtype=torch.long)
    rows = torch.arange(n)
    for step in range(k_max):
        # ‖r − c_j d_j‖² − ‖r‖² = −2 c_j (r·d_j) + c_j² ‖d_j‖²
        gain = -2 * coef * (resid @ dirs.T) + coef**2 * sq_norm
        gain = torch.where(available, gain, torch.full_like(gain, float("inf")))
        best_gain, best = gain.min(1)
        take = best_gain < 0
        if not bool(take.any()):
            break
        order[take, step] = best[take]
        chosen = rows[take]
        resid[chosen] -= coef[chosen, best[take], None] * dirs[best[take]]
        available[chosen, best[take]] = False
    return order


def greedy_edit(
    acts: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, directions: torch.Tensor,
    order: torch.Tensor, k: int,
) -> torch.Tensor:
    """a_base + Σ over the first k chosen latents of (β_j − α_j)·d_j  → [n, d]."""
    chosen = order[:, :k]
    valid = chosen >= 0
    idx = chosen.clamp(min=0)
    coef = (beta - alpha).gather(1, idx) * valid  # [n, k]
    return acts + torch.einsum("nk,nkd->nd", coef, directions[idx])


AWARE_EXCHANGES = (1, 2, 4)


def _top_active(f1: torch.Tensor, active: torch.Tensor, n: int) -> torch.Tensor:
    """Per prompt, the `n` active latents with the highest positive F1 [rows, n], −1 where fewer
    qualify. f1 [rows, d_sae] (each prompt's F1 for its own value), active [rows, d_sae]."""
    score = torch.where(active & (f1 > 0), f1, torch.full_like(f1, -1.0))
    # stable sort: equal F1 keeps latent-index order, so the choice is deterministic
    top_score, top = torch.sort(score, dim=1, descending=True, stable=True)
    top, top_score = top[:, :n], top_score[:, :n]
    return torch.where(top_score > 0, top, torch.full_like(top, -1))


def _contribution(coef: torch.Tensor, directions: torch.Tensor, chosen: torch.Tensor):
    """Σ over the chosen latents (−1: none) of coef[p, j]·d_j → [rows, d]."""
    valid = chosen >= 0
    idx = chosen.clamp(min=0)
    c = coef.gather(1, idx) * valid
    return torch.einsum("nk,nkd->nd", c, directions[idx])


def aware_edit(
    acts: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, directions: torch.Tensor,
    f1: torch.Tensor, source: torch.Tensor, target: torch.Tensor, n: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Interpretation-aware SAE edit, the paper's rule (authors' `get_edit_using_f1_scores`):
    remove the `n` latents active on the base prompt with the best F1 for the source value, at
    their base values α, and add the `n` latents active on the counterfactual prompt with the best
    F1 for the target value, at their counterfactual values β.

    alpha, beta [rows, d_sae]; f1 [n_values, d_sae] (F1 of each latent for each value);
    source/target [rows] value indices. Only latents with F1 > 0 for the value qualify (a latent
    that never fires on the value is no interpretation of it). Returns (edited [rows, d],
    removed [rows, n], added [rows, n]; −1 where none qualified).
    """
    removed = _top_active(f1[source], alpha > 0, n)
    added = _top_active(f1[target], beta > 0, n)
    edited = (acts - _contribution(alpha, directions, removed)
              + _contribution(beta, directions, added))
    return edited, removed, added


def aware_edit_cf_free(
    acts: torch.Tensor, alpha: torch.Tensor, directions: torch.Tensor, f1: torch.Tensor,
    typical: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
) -> torch.Tensor:
    """Counterfactual-free variant (not the paper's rule): remove the base-active latent with the
    best F1 for the source value, add the latent with the best F1 for the target value over all
    latents at its typical activation `typical` [d_sae] (mean when active on fit prompts). Needs
    no counterfactual prompt, so it shows what an interpretation alone buys. → [rows, d]."""
    removed = _top_active(f1[source], alpha > 0, 1)
    best_tgt, added = f1[target].max(1)
    added = torch.where(best_tgt > 0, added, torch.full_like(added, -1))[:, None]
    coef = typical.expand_as(alpha)
    return (acts - _contribution(alpha, directions, removed)
            + _contribution(coef, directions, added))


def latent_weights(latents: torch.Tensor, directions: torch.Tensor, recon: torch.Tensor,
                   bias: torch.Tensor) -> torch.Tensor:
    """weight(j) = (f_j d_j)ᵀ(â − b)/‖â − b‖² for every prompt and latent [rows, d_sae]: each
    latent's share of the reconstruction (paper §5.1; they sum to 1 over latents)."""
    centred = recon - bias
    return latents * (centred @ directions.T) / (centred**2).sum(1, keepdim=True).clamp(min=1e-12)


def removed_weight(weights: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Total weight of the chosen latents (−1: none) per prompt [rows]: the magnitude of an edit
    that removes them (paper §5.1: weight of the features removed)."""
    return (weights.gather(1, chosen.clamp(min=0)) * (chosen >= 0)).sum(1)


def weight(part: torch.Tensor, recon: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Share of a reconstruction carried by a part [n, d]: partᵀ(â − b)/‖â − b‖² → [n]."""
    centred = recon - bias
    return (part * centred).sum(1) / (centred**2).sum(1).clamp(min=1e-12)


def smallest_budget(accuracy_by_k: dict[int, float], goal: float) -> int | None:
    """The smallest budget whose edit accuracy reaches `goal`, or None."""
    for k in sorted(accuracy_by_k):
        if accuracy_by_k[k] >= goal:
            return k
    return None
