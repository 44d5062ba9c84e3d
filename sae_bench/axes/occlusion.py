"""Occlusion diagnostic (METHOD §4): an attribute hidden behind a stronger one.

For each name attribute, coverage = share of its values (present in the prompts) that some latent
matches at F1 ≥ 0.5. An attribute is *occluded* when the node demonstrably uses it (causally
relevant), a linear probe can read it off the activations (decodable), yet the SAE barely covers
it while another attribute is well covered. This module is pure tensor maths: the caller supplies
the relevance evidence and activations for the probe.

Relevance is judged by the effect on the logit difference of removing the attribute's supervised
feature from the node (a − u_{attr, value(p)}, i.e. mean-ablating the attribute): relevant when
|ΔLD| ≥ `RELEVANT_LD_EFFECT` · |LD_clean| (**choice**, METHOD §4). Not by top-1 flips: the paper's
own case (S behind IO at GPT-2's L10H0 queries, where ablating either moves the LD by ≈ 0.5 of a
clean ≈ 3.3, i.e. ≈ 15%) flips almost no prediction. 10% keeps that case and is far above the
noise of a mean over thousands of prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.axes.interpretability import coverage

COVERAGE_F1 = 0.5
RELEVANT_LD_EFFECT = 0.10


def linear_decodability(
    train_acts: torch.Tensor,
    train_labels: torch.Tensor,
    test_acts: torch.Tensor,
    test_labels: torch.Tensor,
    n_values: int,
) -> float:
    """Held-out accuracy of a linear probe predicting the attribute value from activations.

    train_acts [n1, d], train_labels [n1] long in [0, n_values);
    test_acts [n2, d], test_labels [n2].

    Probe: ridge-regularised least squares onto one-hot targets, solved in closed form so the
    result is deterministic (no SGD, no seed). Features are standardised with the *train* mean and
    std (constant features map to 0); targets are centred, which plays the role of an unpenalised
    intercept. W = (XᵀX + λI)⁻¹ XᵀY with λ = 1e-2·n1 (scales with n1 so the penalty's weight
    relative to the data term does not depend on the sample size), solved with
    torch.linalg.solve in float64. Prediction is the argmax over the values seen in training only:
    a value never seen cannot be predicted meaningfully, so its column is masked out.
    """
    x = train_acts.double()
    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))  # constant feature -> all zeros
    x = (x - mean) / std
    y = torch.nn.functional.one_hot(train_labels.long(), n_values).double()  # [n1, V]
    y_mean = y.mean(0)
    n1, d = x.shape
    lam = 1e-2 * n1
    gram = x.T @ x + lam * torch.eye(d, dtype=torch.float64)
    w = torch.linalg.solve(gram, x.T @ (y - y_mean))  # [d, V]
    scores = ((test_acts.double() - mean) / std) @ w + y_mean  # [n2, V]
    seen = torch.bincount(train_labels.long(), minlength=n_values) > 0
    scores[:, ~seen] = float("-inf")
    pred = scores.argmax(1)
    if len(test_labels) == 0:
        return float("nan")
    return float((pred == test_labels.long()).double().mean())


def name_coverage(
    latents: torch.Tensor, labels: torch.Tensor, n_values: int, threshold: float = COVERAGE_F1
) -> float:
    """Share of the attribute's values present in the prompts that some latent matches at
    F1 ≥ threshold (latent active where f > 0). latents [n, d_sae], labels [n] long.

    Returns 0.0 when no value is present (nothing to cover)."""
    covered, present = coverage(latents, labels, n_values, threshold)
    return covered / present if present else 0.0


@dataclass(frozen=True)
class OcclusionVerdict:
    """Occlusion verdict for one attribute; `evidence` is one human-readable sentence."""

    attribute: str
    coverage: float  # in [0, 1]: share of present values with a latent at F1 ≥ 0.5
    ld_effect: float  # |ΔLD| / |LD_clean| when the attribute's supervised feature is removed
    causally_relevant: bool
    decodability: float  # held-out linear-probe accuracy
    occluded: bool
    occluded_by: str | None
    evidence: str


def occlusion(
    coverages: dict[str, float],
    ld_effects: dict[str, float],
    decodability: dict[str, float],
    *,
    relevant_effect: float = RELEVANT_LD_EFFECT,
    low: float = 0.5,
    high: float = 0.8,
    decodable: float = 0.8,
) -> list[OcclusionVerdict]:
    """One verdict per attribute of `coverages` (in its order).

    An attribute is occluded when it is causally relevant (`ld_effects[name]`, the relative LD
    change when its supervised feature is removed, ≥ `relevant_effect`), decodable (probe
    accuracy ≥ `decodable`), its coverage < `low`, and some *other* attribute has coverage ≥
    `high`; `occluded_by` is the best-covered such attribute (ties: first in `coverages` order).
    `ld_effects` and `decodability` must have an entry for every attribute in `coverages`.
    """
    verdicts = []
    for name, cov in coverages.items():
        effect = float(ld_effects[name])
        rel = effect >= relevant_effect
        dec = float(decodability[name])
        others = [(c, a) for a, c in coverages.items() if a != name and c >= high]
        # max() keeps the first of equal maxima, so ties resolve in `coverages` order.
        by = max(others, key=lambda t: t[0])[1] if others else None
        is_dec = dec >= decodable  # NaN (no probe) compares False: not decodable
        occluded = rel and is_dec and cov < low and by is not None
        facts = (
            f"removing {name}'s supervised feature moves the LD by {effect:.0%} of clean "
            f"({'≥' if rel else '<'} {relevant_effect:.0%}: {'' if rel else 'not '}causally "
            f"relevant), probe accuracy {dec:.2f} "
            f"({'≥' if is_dec else '<'} {decodable:.2f}), and {cov:.0%} of its values have a "
            f"latent at F1 ≥ {COVERAGE_F1}"
        )
        if by is None:
            evidence = f"{facts}; no other attribute reaches {high:.0%} coverage: not occluded."
        elif occluded:
            evidence = f"{facts}, while {by} has {coverages[by]:.0%} covered: occluded by {by}."
        else:
            evidence = f"{facts}; {by} has {coverages[by]:.0%} covered: not occluded."
        verdicts.append(
            OcclusionVerdict(name, float(cov), effect, rel, dec, occluded,
                             by if occluded else None, evidence)
        )
    return verdicts
