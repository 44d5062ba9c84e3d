"""One orchestration path: score SAEs at their nodes against the supervised ground truth.

`evaluate(ctx, loaded)` resolves where each SAE sits (evaluation units), then runs every axis on
each unit. The context holds everything shared between SAEs (clean run, dictionaries, patches).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.axes import approximation as approx
from sae_bench.axes import interpretability as interp
from sae_bench.context import EvalContext
from sae_bench.errors import UserError
from sae_bench.evaluate_control import control_scores
from sae_bench.evaluate_diagnostics import diagnostics, relevance
from sae_bench.metrics import coverage_metric, shrinkage_metric
from sae_bench.nodes import CrossSection, Node, validate_hook
from sae_bench.reference import supervised_approximation
from sae_bench.results import (
    LatentInterpretation,
    Metric,
    NodeResult,
    SAEInfo,
    SweepPoint,
    UnitResult,
)
from sae_bench.sae import SAE, SAEBundle

SWEEP_THRESHOLDS = (0.2, 0.4, 0.6, 0.8)
CAUSAL_F1 = 0.6  # METHOD §4: interpretable at F1 >= 0.6 for causal checks
TOP_LATENTS = 16


@dataclass(frozen=True)
class Unit:
    cross_section: CrossSection
    saes: dict[Node, SAE]


def resolve_units(ctx: EvalContext, loaded: SAE | SAEBundle) -> list[Unit]:
    """Where the SAE(s) are evaluated.

    A bundle is one unit (its nodes patched together; named after the registered cross-section
    with the same nodes, if any). A single SAE with a position is one node; without a position it
    is evaluated at every task node with its hook and head, or at every role if the task lists
    none for that hook.
    """
    task = ctx.task
    registered = {frozenset(cs.nodes): cs for cs in task.cross_sections(ctx.model_name)}
    if isinstance(loaded, SAEBundle):
        saes = dict(loaded.items())
        cs = registered.get(frozenset(saes))
        if cs is None:
            cs = CrossSection("bundle", tuple(saes), tuple(task.attributes), "SAE bundle")
        units = [Unit(cs, {n: saes[n] for n in cs.nodes})]
    else:
        sae = loaded
        if sae.hook_name is None:
            raise UserError(
                "the SAE file does not say which hook it reads; pass --hook, e.g. "
                "--hook blocks.3.hook_resid_post (see `sae-bench nodes`)."
            )
        if sae.position is not None:
            nodes = [Node(sae.hook_name, sae.position, sae.head)]
        else:
            nodes = [n for n in task.nodes(ctx.model_name, ctx.model)
                     if n.hook == sae.hook_name and n.head == sae.head]
            nodes = nodes or [Node(sae.hook_name, role, sae.head) for role in task.roles]
        units = [Unit(CrossSection(n.name, (n,), tuple(task.attributes)), {n: sae})
                 for n in nodes]
    for unit in units:
        for node, sae in unit.saes.items():
            validate_hook(ctx.model, node)
            if node.position not in task.roles:
                raise UserError(
                    f"node {node.name}: unknown position {node.position!r}; task {task.name} "
                    f"has roles {', '.join(task.roles)}."
                )
            sae.check_width(ctx.width(node), node.name)
    return units


def sae_info(node: Node, sae: SAE) -> SAEInfo:
    return SAEInfo(
        node=node.name, format=sae.format, architecture=sae.architecture, d_in=sae.d_in,
        d_sae=sae.d_sae, k=None if sae.k is None else float(sae.k),
        input_scale=float(sae.input_scale), source=sae.source_path, sha256=sae.sha256,
    )


def _node_scores(
    ctx: EvalContext, node: Node, sae: SAE, acts, latents, recon, relevant: dict[str, bool]
) -> tuple[NodeResult, torch.Tensor]:
    """Per-node approximation and interpretability, and each latent's best F1 [d_sae]."""
    d = ctx.eval_data
    dictionary = ctx.dictionaries([node])[node]["mean"]
    sup_recon = ctx.supervised_reconstruction(node)
    n_values = {k: len(a.values) for k, a in d.attributes.items()}
    a_metrics = {
        "fvu": Metric(value=approx.fvu(acts, recon), supervised=approx.fvu(acts, sup_recon)),
        "l0": Metric(value=approx.l0(latents), supervised=float(len(d.attributes))),
        "dead_fraction": Metric(value=approx.dead_fraction(latents)),
        "shrinkage": Metric(value=approx.shrinkage(acts, recon),
                            supervised=approx.shrinkage(acts, sup_recon)),
    }
    for attr in d.attributes:
        present = dictionary.present[attr] & (torch.bincount(d.labels[attr],
                                                             minlength=n_values[attr]) > 0)
        dirs = dictionary.features[attr][present]
        gam = approx.directional_shrinkage(acts, recon, dictionary.mean, dirs)
        sup = approx.directional_shrinkage(acts, sup_recon, dictionary.mean, dirs)
        a_metrics[shrinkage_metric(attr)] = Metric(value=float(gam.mean()),
                                                   supervised=float(sup.mean()))
    unions = tuple(a for a, n in n_values.items() if n > 2)  # name attributes
    it = interp.interpret(latents, d.labels, n_values, union_attributes=unions)
    alive = (latents > 0).any(0)
    i_metrics = {}
    for attr in d.attributes:
        covered, n_present = interp.coverage(latents, d.labels[attr], n_values[attr],
                                             interp.INTERPRETABLE_F1)
        i_metrics[coverage_metric(attr)] = Metric(value=covered / n_present, supervised=1.0)
    n_alive = int(alive.sum())
    if n_alive:
        good = (it.f1 >= interp.INTERPRETABLE_F1) & alive
        i_metrics["interpretable_fraction"] = Metric(value=float(good.sum()) / n_alive,
                                                     supervised=1.0)
        i_metrics["mean_best_f1"] = Metric(value=float(it.f1[alive].mean()), supervised=1.0)
    else:
        reason = "every latent is dead on the eval prompts"
        i_metrics["interpretable_fraction"] = Metric(value=None, reason=reason)
        i_metrics["mean_best_f1"] = Metric(value=None, reason=reason)
    order = torch.argsort(it.f1, descending=True, stable=True)[:TOP_LATENTS]
    top = [
        LatentInterpretation(
            latent=j, attribute=it.attribute[j],
            values=[d.attributes[it.attribute[j]].values[v] for v in it.values[j]],
            precision=float(it.precision[j]), recall=float(it.recall[j]), f1=float(it.f1[j]),
        )
        for j in order.tolist() if it.attribute[j] is not None
    ]
    occ, occ_details, split, split_details = diagnostics(ctx, node, latents, acts, relevant)
    return NodeResult(
        node=node.name, sae=sae.sha256 or "", approximation=a_metrics,
        interpretability=i_metrics, occlusion=occ, oversplitting=split, top_latents=top,
        occlusion_details=occ_details, oversplitting_details=split_details,
    ), it.f1


def evaluate_unit(ctx: EvalContext, unit: Unit) -> UnitResult:
    cs = unit.cross_section
    nodes = cs.nodes
    acts = ctx.eval_activations(nodes)
    dicts = ctx.dictionaries(nodes)
    sup = supervised_approximation(ctx, cs)["mean"]
    latents = {n: unit.saes[n].encode(acts[n]).float() for n in nodes}
    recon = {n: unit.saes[n].decode(latents[n]).float() for n in nodes}
    ld_clean = ctx.clean.logit_diff
    ld_ma = ctx.mean_ablation(cs).logit_diff
    ld_sae = ctx.runner.run(recon, argmax=False).logit_diff
    without = {n: approx.without_reconstruction(acts[n], recon[n], dicts[n]["mean"].mean)
               for n in nodes}
    ld_without = ctx.runner.run(without, argmax=False).logit_diff
    conditioned = approx.ablation_gap_ok(ld_ma, ld_clean)
    unit_approx = {
        "sufficiency": Metric(value=approx.sufficiency(ld_sae, ld_clean),
                              supervised=sup.sufficiency),
        "mean_ablation_logit_diff": Metric(value=float(ld_ma.mean())),
    }
    if conditioned:
        sup_recovered = abs(sup.logit_diff_reconstruction - float(ld_ma.mean())) / abs(
            float(ld_clean.mean()) - float(ld_ma.mean()))
        unit_approx["necessity"] = Metric(value=approx.necessity(ld_ma, ld_without, ld_clean),
                                          supervised=sup.necessity)
        unit_approx["logit_diff_recovered"] = Metric(
            value=approx.logit_diff_recovered(ld_sae, ld_ma, ld_clean), supervised=sup_recovered)
    else:
        reason = approx.ill_conditioned_reason(ld_ma, ld_clean)
        unit_approx["necessity"] = Metric(value=None, reason=reason)
        unit_approx["logit_diff_recovered"] = Metric(value=None, reason=reason)
    control_metrics, control_details = control_scores(ctx, cs, unit.saes, acts, latents, recon)
    relevant = relevance(control_details)
    per_node, f1 = [], {}
    for n in nodes:
        result, f1[n] = _node_scores(ctx, n, unit.saes[n], acts[n], latents[n], recon[n],
                                     relevant)
        per_node.append(result)

    sweep = []
    for t in SWEEP_THRESHOLDS:
        keep = {n: (f1[n] >= t).float() for n in nodes}
        kept = {n: unit.saes[n].decode(latents[n] * keep[n]).float() for n in nodes}
        removed = {
            n: acts[n] - ((latents[n] - latents[n].mean(0)) * keep[n])
            @ unit.saes[n].decoder_directions().float()
            for n in nodes
        }
        mass = sum(float(latents[n].sum()) for n in nodes)
        kept_mass = sum(float((latents[n] * keep[n]).sum()) for n in nodes)
        sweep.append(SweepPoint(
            threshold=t,
            latents_kept_fraction=kept_mass / mass if mass else 0.0,
            sufficiency_kept=approx.sufficiency(ctx.runner.run(kept, argmax=False).logit_diff,
                                                ld_clean),
            necessity_removed=approx.necessity(
                ld_ma, ctx.runner.run(removed, argmax=False).logit_diff, ld_clean)
            if conditioned else None,
        ))
    at = next(p for p in sweep if p.threshold == CAUSAL_F1)
    unit_interp = {
        "sufficiency_interpretable": Metric(value=at.sufficiency_kept, supervised=sup.sufficiency),
        "necessity_interpretable": Metric(
            value=at.necessity_removed, supervised=sup.necessity,
            reason=None if conditioned else approx.ill_conditioned_reason(ld_ma, ld_clean)),
    }
    return UnitResult(
        name=cs.name, nodes=[n.name for n in nodes], attributes=list(cs.attributes),
        approximation=unit_approx, interpretability=unit_interp, control=control_metrics,
        causal_sweep=sweep, control_details=control_details, per_node=per_node,
    )


def evaluate(ctx: EvalContext, units: list[Unit]) -> list[UnitResult]:
    ctx.plan([node for unit in units for node in unit.cross_section.nodes])
    results = []
    for unit in ctx.progress.bar(units, desc="evaluation units"):
        with ctx.progress.step(f"scoring {unit.cross_section.name}"):
            results.append(evaluate_unit(ctx, unit))
    return results
