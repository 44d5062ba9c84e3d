"""Metric metadata: one registry saying what each reported number means and which way is better.

Reports rank by `direction`; "one" means closest to 1 is best (sufficiency, γ).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

Direction = Literal["higher", "lower", "one", "none"]


class MetricInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str
    description: str
    direction: Direction
    range: tuple[float | None, float | None]


def _m(category: str, direction: Direction, lo, hi, description: str) -> MetricInfo:
    return MetricInfo(category=category, description=description, direction=direction,
                      range=(lo, hi))


METRICS: dict[str, MetricInfo] = {
    # approximation, per cross-section (all nodes patched at once)
    "sufficiency": _m("approximation", "one", None, None,
                      "mean LD with reconstructions patched / clean mean LD"),
    "necessity": _m("approximation", "higher", None, 1.0,
                    "1 - |LD_MA - LD(mean + a - recon)| / |LD_MA - LD_clean|"),
    "logit_diff_recovered": _m("approximation", "one", None, None,
                               "(LD_recon - LD_MA) / (LD_clean - LD_MA), signed: below 0 when the "
                               "reconstruction moves the LD past mean ablation, away from clean"),
    "mean_ablation_logit_diff": _m("approximation", "none", None, None,
                                   "mean LD with every node set to its fit-prompt mean"),
    # approximation, per node
    "fvu": _m("approximation", "lower", 0.0, None, "fraction of variance unexplained"),
    "l0": _m("approximation", "lower", 0.0, None, "mean number of active latents per prompt"),
    "dead_fraction": _m("approximation", "lower", 0.0, 1.0,
                        "share of latents never active on the fit prompts (which hold every "
                        "name)"),
    "shrinkage": _m("approximation", "one", None, None,
                    "centred gamma = sum|recon - m|^2 / sum (recon - m).(a - m), m the mean "
                    "activation; < 1 means the SAE shrinks deviations from the mean"),
    "shrinkage_pooled": _m("approximation", "one", None, None,
                           "pooled gamma = sum|recon|^2 / sum recon . a (Gated-SAE paper, "
                           "SAELens); understates shrinkage when the mean is large"),
    # interpretability, per node
    "interpretable_fraction": _m("interpretability", "higher", 0.0, 1.0,
                                 "share of alive latents whose best property has F1 >= 0.8"),
    "mean_best_f1": _m("interpretability", "higher", 0.0, 1.0,
                       "mean over alive latents of the best property's F1"),
    # interpretability, per cross-section (causal checks at F1 >= 0.6)
    "sufficiency_interpretable": _m(
        "interpretability", "one", None, None,
        "sufficiency when the active latents with F1 < 0.6 are subtracted from the activation "
        "(the SAE's error stays in; paper A.12)"),
    "sufficiency_interpretable_decoded": _m(
        "interpretability", "one", None, None,
        "variant: sufficiency of decoding only the latents with F1 >= 0.6 (error dropped)"),
    "necessity_interpretable": _m(
        "interpretability", "higher", None, 1.0,
        "necessity when latents with F1 >= 0.6 are set to their fit-prompt means in the "
        "activation"),
}


def coverage_metric(attribute: str) -> str:
    return f"coverage_{attribute}"


def shrinkage_metric(attribute: str) -> str:
    return f"shrinkage_{attribute}"


def info(name: str) -> MetricInfo:
    """Metadata of a metric, including the per-attribute families (coverage_IO, shrinkage_S)."""
    if name in METRICS:
        return METRICS[name]
    if name.startswith("coverage_"):
        return _m("interpretability", "higher", 0.0, 1.0,
                  f"share of {name[9:]} values in the eval prompts with a latent at F1 >= 0.8")
    m = re.fullmatch(r"edit_accuracy_(\w+)_k(\d+)", name)
    if m:
        return _m("control", "higher", 0.0, 1.0,
                  f"greedy SAE edit of {m.group(1)} with {m.group(2)} latent(s) per node: share "
                  "of prompts whose top-1 matches the counterfactual patch's")
    m = re.fullmatch(r"aware_edit_accuracy_cf_free_(\w+)", name)
    if m:
        return _m("control", "higher", 0.0, 1.0,
                  f"variant: aware edit of {m.group(1)} that adds the top-F1 target latent at "
                  "its typical fit-prompt value (no counterfactual prompt)")
    m = re.fullmatch(r"aware_edit_accuracy_(\w+?)(?:_n(\d+))?", name)
    if m:
        n = m.group(2) or "1"
        return _m("control", "higher", 0.0, 1.0,
                  f"interpretation-aware SAE edit of {m.group(1)} (paper): remove the {n} "
                  "base-active latent(s) with the best F1 for the source value, add the "
                  f"{n} counterfactual-active latent(s) best for the target at their values")
    m = re.fullmatch(r"weight_removed_(\w+)_k(\d+)", name)
    if m:
        return _m("control", "none", None, None,
                  f"weight (share of the reconstruction) of the latents the greedy {m.group(1)} "
                  f"edit with {m.group(2)} latent(s) changes (supervised: the source feature's)")
    if name.startswith("min_budget_"):
        return _m("control", "lower", 1.0, None,
                  f"smallest number of latents per node whose greedy edit of {name[11:]} reaches "
                  "the supervised edit accuracy")
    if name.startswith("aware_weight_removed_"):
        return _m("control", "none", None, None,
                  f"share of the reconstruction carried by the latent removed in the aware "
                  f"{name[21:]} edit (supervised: the source feature's share)")
    families: tuple[tuple[str, Direction, float, float | None, str], ...] = (
        ("coverage05_", "higher", 0.0, 1.0, "share of {} values with a latent at F1 >= 0.5"),
        ("decodability_", "higher", 0.0, 1.0, "held-out accuracy of a linear probe for {}"),
        ("ld_effect_", "none", 0.0, None, "|LD change| / |clean LD| when the supervised {} "
         "feature is removed at the node (relevant at >= 0.1)"),
        ("occluded_", "lower", 0.0, 1.0, "1 when {} is relevant and decodable but hidden "
         "behind a better-covered attribute"),
        ("split_latents_", "lower", 0.0, None, "latents with precision >= 0.9 for {}, "
         "significant (binomial test) and not explained by a richer property"),
        ("split_union_recall_", "higher", 0.0, 1.0, "recall of the union of the precise "
         "latents for {}"),
        ("oversplit_", "lower", 0.0, 1.0, "1 when {} is spread over several precise latents, "
         "none with recall >= 0.8"),
    )
    for prefix, direction, lo, hi, text in families:
        if name.startswith(prefix):
            category = "occlusion" if prefix in ("coverage05_", "decodability_", "occluded_",
                                                 "ld_effect_") \
                else "oversplitting"
            return _m(category, direction, lo, hi, text.format(name[len(prefix):]))
    if name.startswith("shrinkage_"):
        return _m("approximation", "one", None, None,
                  f"gamma along the supervised {name[10:]} directions, centred on the mean")
    raise KeyError(name)
