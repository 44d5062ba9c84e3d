"""One orchestration path: score SAEs at their nodes against the supervised ground truth.

`evaluate(ctx, loaded)` resolves where each SAE sits (evaluation units), then runs every axis on
each unit. The context holds everything shared between SAEs (clean run, dictionaries, patches).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.axes import approximation as approx
from sae_bench.axes import interpretability as interp
from sae_bench.axes.supervised_codes import residual_precision, supervised_codes
from sae_bench.engine.context import EvalContext
from sae_bench.errors import UserError
from sae_bench.evaluate.control import control_scores
from sae_bench.evaluate.diagnostics import diagnostics
from sae_bench.models.nodes import CrossSection, Node, validate_hook
from sae_bench.results.document import (
    LatentInterpretation,
    Metric,
    NodeResult,
    SAEInfo,
    SweepPoint,
    UnitResult,
)
from sae_bench.results.metrics import coverage_metric, shrinkage_metric
from sae_bench.sae import SAE, SAEBundle
from sae_bench.truth.reference import supervised_approximation

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


def _interpretability(
    d, families, latents: torch.Tensor, supervised: torch.Tensor
) -> tuple[dict[str, Metric], interp.Interpretation]:
    """Coverage, interpretable fraction and mean best F1 of `latents`, each beside the same
    measurement of the supervised dictionary's codes `supervised` (see
    `axes.supervised_codes`), and the latents' interpretations."""
    it = interp.interpret(latents, families)
    sup_it = interp.interpret(supervised, families)
    metrics = {}
    for attr, a in d.attributes.items():
        n_values = len(a.values)
        covered, n_present = interp.coverage(latents, a.labels, n_values, interp.INTERPRETABLE_F1)
        sup_covered, _ = interp.coverage(supervised, a.labels, n_values, interp.INTERPRETABLE_F1)
        metrics[coverage_metric(attr)] = Metric(value=covered / n_present,
                                                supervised=sup_covered / n_present)
    for name, f1, alive in (("value", it.f1, (latents > 0).any(0)),
                            ("supervised", sup_it.f1, (supervised > 0).any(0))):
        n_alive = int(alive.sum())
        frac = float(((f1 >= interp.INTERPRETABLE_F1) & alive).sum()) / n_alive if n_alive else None
        mean = float(f1[alive].mean()) if n_alive else None
        if name == "value":
            reason = None if n_alive else "every latent is dead on the eval prompts"
            metrics["interpretable_fraction"] = Metric(value=frac, reason=reason)
            metrics["mean_best_f1"] = Metric(value=mean, reason=reason)
        else:
            for key, v in (("interpretable_fraction", frac), ("mean_best_f1", mean)):
                metrics[key] = metrics[key].model_copy(update={"supervised": v})
    return metrics, it


def _node_scores(
    ctx: EvalContext, node: Node, sae: SAE, acts, latents, recon, fit_latents,
) -> tuple[NodeResult, torch.Tensor]:
    """Per-node approximation and interpretability, and each latent's best F1 [d_sae]."""
    d = ctx.eval_data
    dictionary = ctx.dictionaries([node])[node][ctx.comparator]
    sup_recon = ctx.supervised_reconstruction(node, ctx.comparator)
    a_metrics = {
        "fvu": Metric(value=approx.fvu(acts, recon), supervised=approx.fvu(acts, sup_recon)),
        "l0": Metric(value=approx.l0(latents), supervised=float(len(d.attributes))),
        "dead_fraction": Metric(value=approx.dead_fraction(fit_latents)),
        "shrinkage": Metric(value=approx.shrinkage(acts, recon),
                            supervised=approx.shrinkage(acts, sup_recon)),
        "shrinkage_pooled": Metric(value=approx.shrinkage_pooled(acts, recon),
                                   supervised=approx.shrinkage_pooled(acts, sup_recon)),
    }
    for attr, a in d.attributes.items():
        present = dictionary.present[attr] & (torch.bincount(a.labels, minlength=len(a.values))
                                              > 0)
        dirs = dictionary.features[attr][present]
        gam = approx.directional_shrinkage(acts, recon, dictionary.mean, dirs)
        sup = approx.directional_shrinkage(acts, sup_recon, dictionary.mean, dirs)
        a_metrics[shrinkage_metric(attr)] = Metric(value=float(gam.mean()),
                                                   supervised=float(sup.mean()))
    families = ctx.memo("properties", lambda: ctx.task.properties(d))
    supervised = ctx.memo(("supervised_codes", node, ctx.comparator), lambda: supervised_codes(
        dictionary, acts, residual_precision(dictionary, ctx.fit_activations([node])[node],
                                             ctx.fit_data.labels)))
    i_metrics, it = _interpretability(d, families, latents, supervised)
    top = [
        LatentInterpretation(
            latent=j, attribute=it.attribute[j],
            values=[next(f for f in families if f.name == it.attribute[j]).values[v]
                    for v in it.values[j]],
            precision=float(it.precision[j]), recall=float(it.recall[j]), f1=float(it.f1[j]),
        )
        for j in torch.argsort(it.f1, descending=True, stable=True)[:TOP_LATENTS].tolist()
        if it.attribute[j] is not None
    ]
    occ, occ_details, split, split_details = diagnostics(ctx, node, latents, acts, it,
                                                         supervised, families)
    return NodeResult(
        node=node.name, sae=sae.sha256 or "", approximation=a_metrics,
        interpretability=i_metrics, occlusion=occ, oversplitting=split, top_latents=top,
        occlusion_details=occ_details, oversplitting_details=split_details,
    ), it.f1


def _causal_sweep(ctx, unit, acts, latents, fit_latents, f1, ld_ma, conditioned):
    """Sufficiency and necessity of the interpretable latents at each F1 threshold (paper
    appendix A.12), all nodes of the unit at once."""
    nodes = unit.cross_section.nodes
    ld_clean = ctx.clean.logit_diff
    dirs = {n: unit.saes[n].decoder_directions().float() for n in nodes}
    fit_mean = {n: fit_latents[n].mean(0) for n in nodes}
    active = sum(int((latents[n] > 0).sum()) for n in nodes)
    sweep = []
    for t in SWEEP_THRESHOLDS:
        keep = {n: (f1[n] >= t).float() for n in nodes}
        # the paper's sufficiency: subtract the non-interpretable latents, keep the SAE's error
        subtracted = {n: acts[n] - (latents[n] * (1 - keep[n])) @ dirs[n] for n in nodes}
        decoded = {n: unit.saes[n].decode(latents[n] * keep[n]).float() for n in nodes}
        # necessity: the interpretable latents set to their fit-prompt means, as mean ablation
        # sets the activation to its fit-prompt mean (removing every latent is mean ablation)
        removed = {n: acts[n] - ((latents[n] - fit_mean[n]) * keep[n]) @ dirs[n] for n in nodes}
        kept = sum(int(((latents[n] > 0) & (keep[n] > 0)).sum()) for n in nodes)
        sweep.append(SweepPoint(
            threshold=t,
            latents_kept_fraction=kept / active if active else 0.0,
            sufficiency_kept=approx.sufficiency(
                ctx.runner.run(subtracted, argmax=False).logit_diff, ld_clean),
            sufficiency_kept_decoded=approx.sufficiency(
                ctx.runner.run(decoded, argmax=False).logit_diff, ld_clean),
            necessity_removed=approx.necessity(
                ld_ma, ctx.runner.run(removed, argmax=False).logit_diff, ld_clean)
            if conditioned else None,
        ))
    return sweep


def evaluate_unit(ctx: EvalContext, unit: Unit) -> UnitResult:
    cs = unit.cross_section
    nodes = cs.nodes
    acts = ctx.eval_activations(nodes)
    dicts = ctx.dictionaries(nodes)
    sup = supervised_approximation(ctx, cs)[ctx.comparator]
    latents = {n: unit.saes[n].encode(acts[n]).float() for n in nodes}
    recon = {n: unit.saes[n].decode(latents[n]).float() for n in nodes}
    fit_acts = ctx.fit_activations(nodes)
    fit_latents = {n: unit.saes[n].encode(fit_acts[n]).float() for n in nodes}
    ld_clean = ctx.clean.logit_diff
    ld_ma = ctx.mean_ablation(cs).logit_diff
    ld_sae = ctx.runner.run(recon, argmax=False).logit_diff
    without = {n: approx.without_reconstruction(acts[n], recon[n], dicts[n][ctx.comparator].mean)
               for n in nodes}
    ld_without = ctx.runner.run(without, argmax=False).logit_diff
    conditioned = approx.ablation_gap_ok(ld_ma, ld_clean)
    unit_approx = {
        "sufficiency": Metric(value=approx.sufficiency(ld_sae, ld_clean),
                              supervised=sup.sufficiency),
        "mean_ablation_logit_diff": Metric(value=float(ld_ma.mean())),
    }
    if conditioned:
        unit_approx["necessity"] = Metric(value=approx.necessity(ld_ma, ld_without, ld_clean),
                                          supervised=sup.necessity)
        unit_approx["logit_diff_recovered"] = Metric(
            value=approx.logit_diff_recovered(ld_sae, ld_ma, ld_clean),
            supervised=approx.logit_diff_recovered(
                torch.tensor(sup.logit_diff_reconstruction), ld_ma, ld_clean))
    else:
        reason = approx.ill_conditioned_reason(ld_ma, ld_clean)
        unit_approx["necessity"] = Metric(value=None, reason=reason)
        unit_approx["logit_diff_recovered"] = Metric(value=None, reason=reason)
    control_metrics, control_details = control_scores(ctx, cs, unit.saes, acts, latents, recon,
                                                      fit_latents)
    per_node, f1 = [], {}
    for n in nodes:
        result, f1[n] = _node_scores(ctx, n, unit.saes[n], acts[n], latents[n], recon[n],
                                     fit_latents[n])
        per_node.append(result)

    sweep = _causal_sweep(ctx, unit, acts, latents, fit_latents, f1, ld_ma, conditioned)
    at = next(p for p in sweep if p.threshold == CAUSAL_F1)
    unit_interp = {
        "sufficiency_interpretable": Metric(value=at.sufficiency_kept, supervised=sup.sufficiency),
        "sufficiency_interpretable_decoded": Metric(value=at.sufficiency_kept_decoded,
                                                    supervised=sup.sufficiency),
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
