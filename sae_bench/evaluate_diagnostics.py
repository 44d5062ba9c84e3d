"""Occlusion and over-splitting diagnostics for one SAE at one node (maths in
sae_bench/axes/occlusion.py and sae_bench/axes/oversplitting.py)."""

from __future__ import annotations

import torch

from sae_bench.axes.occlusion import linear_decodability, name_coverage, occlusion
from sae_bench.axes.oversplitting import oversplitting
from sae_bench.context import EvalContext
from sae_bench.nodes import Node
from sae_bench.results import AttributeControl, Metric, OcclusionResult, SplitResult

# "Its supervised edit succeeds" (METHOD §4): the counterfactual patch changes the output and
# the supervised edit reproduces it on at least this share of prompts (**choice**).
SUPERVISED_EDIT_SUCCEEDS = 0.8


def relevance(control: list[AttributeControl]) -> dict[str, bool]:
    return {
        c.attribute: c.causally_relevant and c.supervised_edit_accuracy >= SUPERVISED_EDIT_SUCCEEDS
        for c in control
    }


def diagnostics(
    ctx: EvalContext, node: Node, latents: torch.Tensor, acts: torch.Tensor,
    relevant: dict[str, bool],
) -> tuple[dict[str, Metric], list[OcclusionResult], dict[str, Metric], list[SplitResult]]:
    d, fit = ctx.eval_data, ctx.fit_data
    fit_acts = ctx.fit_activations([node])[node]
    names = [a for a, attr in d.attributes.items() if len(attr.values) > 2]
    binary = [a for a, attr in d.attributes.items() if len(attr.values) == 2]

    coverages, decodable = {}, {}
    for a in names:
        n_values = len(d.attributes[a].values)
        coverages[a] = name_coverage(latents, d.labels[a], n_values, threshold=0.5)
        decodable[a] = ctx.memo(
            ("decodability", node, a),
            lambda a=a, n_values=n_values: linear_decodability(
                fit_acts, fit.labels[a], acts, d.labels[a], n_values),
        )
    verdicts = occlusion(coverages, {a: relevant.get(a, False) for a in names}, decodable)
    occ_metrics: dict[str, Metric] = {}
    occ_details = []
    for v in verdicts:
        occ_metrics[f"coverage05_{v.attribute}"] = Metric(value=v.coverage, supervised=1.0)
        occ_metrics[f"decodability_{v.attribute}"] = Metric(value=v.decodability)
        occ_metrics[f"occluded_{v.attribute}"] = Metric(value=float(v.occluded), supervised=0.0)
        occ_details.append(OcclusionResult(**v.__dict__))

    split_metrics: dict[str, Metric] = {}
    split_details = []
    for a in binary:
        attr = d.attributes[a]
        for r in oversplitting(latents, attr.labels, attr.values, a):
            key = f"{a}_{r.value}"
            split_metrics[f"split_latents_{key}"] = Metric(value=float(r.count), supervised=1.0)
            split_metrics[f"split_union_recall_{key}"] = Metric(value=r.union_recall,
                                                                supervised=1.0)
            split_metrics[f"oversplit_{key}"] = Metric(value=float(r.split), supervised=0.0)
            split_details.append(SplitResult(**r.__dict__))
    return occ_metrics, occ_details, split_metrics, split_details
