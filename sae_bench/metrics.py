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
    "logit_diff_recovered": _m("approximation", "one", 0.0, None,
                               "|LD_recon - LD_MA| / |LD_clean - LD_MA|"),
    "mean_ablation_logit_diff": _m("approximation", "none", None, None,
                                   "mean LD with every node set to its fit-prompt mean"),
    # approximation, per node
    "fvu": _m("approximation", "lower", 0.0, None, "fraction of variance unexplained"),
    "l0": _m("approximation", "lower", 0.0, None, "mean number of active latents per prompt"),
    "dead_fraction": _m("approximation", "lower", 0.0, 1.0,
                        "share of latents never active on eval prompts"),
    "shrinkage": _m("approximation", "one", None, None,
                    "gamma = E|recon|^2 / E[recon . a]; < 1 means shrinkage"),
    # interpretability, per node
    "interpretable_fraction": _m("interpretability", "higher", 0.0, 1.0,
                                 "share of alive latents whose best property has F1 >= 0.8"),
    "mean_best_f1": _m("interpretability", "higher", 0.0, 1.0,
                       "mean over alive latents of the best property's F1"),
    # interpretability, per cross-section (causal checks at F1 >= 0.6)
    "sufficiency_interpretable": _m(
        "interpretability", "one", None, None,
        "sufficiency when latents with F1 < 0.6 are removed from the reconstruction"),
    "necessity_interpretable": _m(
        "interpretability", "higher", None, 1.0,
        "necessity when latents with F1 >= 0.6 are mean-ablated from the activation"),
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
    if name.startswith("aware_edit_accuracy_"):
        return _m("control", "higher", 0.0, 1.0,
                  f"interpretation-aware SAE edit of {name[20:]} (swap the top-F1 latents)")
    if name.startswith("min_budget_"):
        return _m("control", "lower", 1.0, None,
                  f"smallest number of latents per node whose greedy edit of {name[11:]} reaches "
                  "the supervised edit accuracy")
    if name.startswith("weight_removed_"):
        return _m("control", "none", None, None,
                  f"share of the reconstruction carried by the latent removed in the aware "
                  f"{name[15:]} edit (supervised: the source feature's share)")
    families: tuple[tuple[str, Direction, float, float | None, str], ...] = (
        ("coverage05_", "higher", 0.0, 1.0, "share of {} values with a latent at F1 >= 0.5"),
        ("decodability_", "higher", 0.0, 1.0, "held-out accuracy of a linear probe for {}"),
        ("occluded_", "lower", 0.0, 1.0, "1 when {} is relevant and decodable but hidden "
         "behind a better-covered attribute"),
        ("split_latents_", "lower", 0.0, None, "latents with precision >= 0.9 for {}"),
        ("split_union_recall_", "higher", 0.0, 1.0, "recall of the union of the precise "
         "latents for {}"),
        ("oversplit_", "lower", 0.0, 1.0, "1 when {} is spread over several precise latents, "
         "none with recall >= 0.8"),
    )
    for prefix, direction, lo, hi, text in families:
        if name.startswith(prefix):
            category = "occlusion" if prefix in ("coverage05_", "decodability_", "occluded_") \
                else "oversplitting"
            return _m(category, direction, lo, hi, text.format(name[len(prefix):]))
    if name.startswith("shrinkage_"):
        return _m("approximation", "one", None, None,
                  f"gamma along the supervised {name[10:]} directions, centred on the mean")
    raise KeyError(name)
