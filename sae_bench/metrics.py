"""Metric metadata: one registry saying what each reported number means and which way is better.

Reports rank by `direction`; "one" means closest to 1 is best (sufficiency, γ).
"""

from __future__ import annotations

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
    if name.startswith("shrinkage_"):
        return _m("approximation", "one", None, None,
                  f"gamma along the supervised {name[10:]} directions, centred on the mean")
    raise KeyError(name)
