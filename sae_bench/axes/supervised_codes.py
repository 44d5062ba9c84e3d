"""The supervised dictionary read as an encoder, so that it can be scored by exactly the
interpretability and diagnostic code that scores an SAE (instead of a comparator of 1.0 assumed
by construction).

Each attribute i is decoded separately from the activation by the maximum-likelihood value under
the dictionary's own model, a = â + ε with ε ~ N(0, Σ) and Σ the covariance of the dictionary's
residuals a − â on the fit prompts (linear discriminant analysis with the features as class
offsets):

    v̂_i(p) = argmax_v  u_{i,v}ᵀ Σ⁻¹ (a(p) − ā) − ½ u_{i,v}ᵀ Σ⁻¹ u_{i,v}   (v seen while fitting)

(u centred over the values of i). The code has one "latent" per (attribute, value), active (1.0)
on the prompts decoded to that value. Where two attributes share one direction (ioi-tiny's main
node, where u_IO,v ≈ u_S,v) no decoder can tell them apart and the codes' F1 drops — which is
what the comparator should show.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from sae_bench.truth.dictionaries import SupervisedDictionary

# Ridge added to Σ, relative to its mean eigenvalue, so that directions with (almost) no residual
# variance (e.g. a head's unused dimensions) do not dominate the decoder.
RIDGE = 1e-3


def residual_precision(dictionary: SupervisedDictionary, fit_acts: torch.Tensor,
                       fit_labels: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Σ⁻¹ [d, d] (float64) of the dictionary's residuals on the fit prompts."""
    resid = fit_acts.double() - dictionary.reconstruct(fit_labels).double()
    resid = resid - resid.mean(0)
    cov = resid.T @ resid / max(len(resid) - 1, 1)
    ridge = RIDGE * float(cov.diagonal().mean().clamp(min=1e-12))
    return torch.linalg.inv(cov + ridge * torch.eye(len(cov), dtype=cov.dtype))


def supervised_codes(dictionary: SupervisedDictionary, acts: torch.Tensor,
                     precision: torch.Tensor) -> torch.Tensor:
    """acts [n, d] → codes [n, Σ_i n_values_i] (0/1), attributes in the dictionary's order;
    `precision` from `residual_precision`."""
    centred = acts.double() - dictionary.mean.double()
    blocks = []
    for attr, features in dictionary.features.items():
        present = dictionary.present[attr]
        # Least-squares features are identified only up to a shift shared by all values of an
        # attribute; centring each attribute's features removes it (mean features are centred
        # already, up to unequal value counts).
        u = features.double() - features.double()[present].mean(0)  # [V, d]
        w = u @ precision  # [V, d]
        score = centred @ w.T - 0.5 * (w * u).sum(1)
        score[:, ~present] = float("-inf")
        blocks.append(torch.nn.functional.one_hot(score.argmax(1), len(u)).float())
    return torch.cat(blocks, 1)
