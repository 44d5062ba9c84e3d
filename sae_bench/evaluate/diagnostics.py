"""Occlusion and over-splitting diagnostics for one SAE at one node (maths in
sae_bench/axes/occlusion.py and sae_bench/axes/oversplitting.py), each run the same way on the
supervised dictionary's codes for the comparator."""

from __future__ import annotations

import torch

from sae_bench.axes.interpretability import Interpretation, PropertyFamily, interpret
from sae_bench.axes.occlusion import linear_decodability, name_coverage, occlusion
from sae_bench.axes.oversplitting import EXPLAINED_F1, oversplitting
from sae_bench.engine.context import EvalContext
from sae_bench.models.nodes import Node
from sae_bench.results.document import Metric, OcclusionResult, SplitResult


def ld_effect(ctx: EvalContext, node: Node, attribute: str) -> float:
    """|ΔLD| / |LD_clean| when `attribute`'s supervised feature is removed at `node` alone."""
    clean = float(ctx.clean.logit_diff.mean())
    ablated = float(ctx.attribute_ablation(node, attribute).logit_diff.mean())
    return abs(ablated - clean) / abs(clean)


def _explained(it: Interpretation, attribute: str) -> torch.Tensor:
    """[d_sae] bool: latents whose best interpretation is a property other than `attribute`'s
    own values, at F1 ≥ EXPLAINED_F1 (e.g. a name∧Pos conjunction)."""
    other = torch.tensor([a is not None and a != attribute for a in it.attribute])
    return other & (it.f1 >= EXPLAINED_F1)


def diagnostics(
    ctx: EvalContext, node: Node, latents: torch.Tensor, acts: torch.Tensor,
    it: Interpretation, supervised: torch.Tensor, families: list[PropertyFamily],
) -> tuple[dict[str, Metric], list[OcclusionResult], dict[str, Metric], list[SplitResult]]:
    d, fit = ctx.eval_data, ctx.fit_data
    fit_acts = ctx.fit_activations([node])[node]
    names = [a for a, attr in d.attributes.items() if len(attr.values) > 2]
    binary = [a for a, attr in d.attributes.items() if len(attr.values) == 2]

    coverages, sup_coverages, decodable, effects = {}, {}, {}, {}
    for a in names:
        n_values = len(d.attributes[a].values)
        coverages[a] = name_coverage(latents, d.labels[a], n_values)
        sup_coverages[a] = name_coverage(supervised, d.labels[a], n_values)
        decodable[a] = ctx.memo(
            ("decodability", node, a),
            lambda a=a, n_values=n_values: linear_decodability(
                fit_acts, fit.labels[a], acts, d.labels[a], n_values),
        )
        effects[a] = ld_effect(ctx, node, a)
    verdicts = occlusion(coverages, effects, decodable)
    sup_verdicts = {v.attribute: v for v in occlusion(sup_coverages, effects, decodable)}
    occ_metrics: dict[str, Metric] = {}
    occ_details = []
    for v in verdicts:
        sup = sup_verdicts[v.attribute]
        occ_metrics[f"coverage05_{v.attribute}"] = Metric(value=v.coverage,
                                                          supervised=sup.coverage)
        occ_metrics[f"decodability_{v.attribute}"] = Metric(value=v.decodability)
        occ_metrics[f"ld_effect_{v.attribute}"] = Metric(value=v.ld_effect)
        occ_metrics[f"occluded_{v.attribute}"] = Metric(value=float(v.occluded),
                                                        supervised=float(sup.occluded))
        occ_details.append(OcclusionResult(**v.__dict__))

    sup_it = ctx.memo(("supervised_interpretation", node, ctx.comparator),
                      lambda: interpret(supervised, families))
    split_metrics: dict[str, Metric] = {}
    split_details = []
    for a in binary:
        attr = d.attributes[a]
        sup_reports = oversplitting(supervised, attr.labels, attr.values, a,
                                    explained=_explained(sup_it, a))
        reports = oversplitting(latents, attr.labels, attr.values, a,
                                explained=_explained(it, a))
        for r, s in zip(reports, sup_reports, strict=True):
            key = f"{a}_{r.value}"
            split_metrics[f"split_latents_{key}"] = Metric(value=float(r.count),
                                                           supervised=float(s.count))
            split_metrics[f"split_union_recall_{key}"] = Metric(value=r.union_recall,
                                                                supervised=s.union_recall)
            split_metrics[f"oversplit_{key}"] = Metric(value=float(r.split),
                                                       supervised=float(s.split))
            split_details.append(SplitResult(**r.__dict__))
    return occ_metrics, occ_details, split_metrics, split_details
