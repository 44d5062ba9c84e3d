"""Control axis for one evaluation unit: can the model be steered by editing SAE latents as well
as by editing the supervised features? (maths in sae_bench/axes/control.py)"""

from __future__ import annotations

import torch

from sae_bench.axes import control
from sae_bench.axes.interpretability import value_scores
from sae_bench.engine.context import EvalContext
from sae_bench.models.nodes import CrossSection, Node
from sae_bench.results.document import AttributeControl, Metric
from sae_bench.sae import SAE
from sae_bench.truth.reference import supervised_edit


def _typical_activation(latents: torch.Tensor) -> torch.Tensor:
    """Mean activation of each latent over the prompts where it fires [d_sae]."""
    active = latents > 0
    return (latents * active).sum(0) / active.sum(0).clamp(min=1)


def control_scores(
    ctx: EvalContext, cs: CrossSection, saes: dict[Node, SAE],
    acts: dict[Node, torch.Tensor], latents: dict[Node, torch.Tensor],
    recon: dict[Node, torch.Tensor], fit_latents: dict[Node, torch.Tensor],
) -> tuple[dict[str, Metric], list[AttributeControl]]:
    d = ctx.eval_data
    nodes = cs.nodes
    method = ctx.comparator
    dirs = {n: saes[n].decoder_directions().float() for n in nodes}
    weights = {n: control.latent_weights(latents[n], dirs[n], recon[n],
                                         saes[n].output_bias.float()) for n in nodes}
    dicts = ctx.dictionaries(nodes)
    fit = ctx.fit_data
    sup_recon = {n: ctx.supervised_reconstruction(n, method) for n in nodes}
    metrics: dict[str, Metric] = {}
    details = []
    for attr in cs.attributes:
        cf = d.counterfactuals[attr]
        target = ctx.counterfactual_target(cs, attr)
        agreement = control.agreement(ctx.clean_argmax, target)
        sup_acc = supervised_edit(ctx, cs, attr)[method]
        sup_weight = float(torch.stack([
            control.weight(dicts[n][method].features[attr][cf.source], sup_recon[n],
                           dicts[n][method].mean) for n in nodes]).mean())
        cf_acts = ctx.counterfactual_activations(attr, nodes)
        beta = {n: saes[n].encode(cf_acts[n]).float() for n in nodes}
        orders = {
            n: control.greedy_order(latents[n], beta[n], dirs[n], cf_acts[n] - acts[n])
            for n in nodes
        }
        by_k, weight_by_k = {}, {}
        for k in control.BUDGETS:
            edited = {n: control.greedy_edit(acts[n], latents[n], beta[n], dirs[n], orders[n], k)
                      for n in nodes}
            by_k[k] = control.agreement(ctx.run_argmax(edited), target)
            weight_by_k[k] = float(torch.stack([
                control.removed_weight(weights[n], orders[n][:, :k]).mean() for n in nodes
            ]).mean())
        min_k = control.smallest_budget(by_k, sup_acc)

        # Interpretation-aware: latents ranked by F1 on the fit prompts, the only prompts that
        # contain the counterfactual names (eval prompts use the other half of the names).
        n_values = len(d.attributes[attr].values)
        f1 = {n: value_scores(fit_latents[n] > 0, fit.labels[attr], n_values).f1 for n in nodes}
        aware_by_n, aware_weight = {}, 0.0
        for n_swap in control.AWARE_EXCHANGES:
            edits = {n: control.aware_edit(acts[n], latents[n], beta[n], dirs[n], f1[n],
                                           cf.source, cf.target, n_swap) for n in nodes}
            aware_by_n[n_swap] = control.agreement(
                ctx.run_argmax({n: e[0] for n, e in edits.items()}), target)
            if n_swap == 1:
                aware_weight = float(torch.stack([
                    control.removed_weight(weights[n], edits[n][1]).mean() for n in nodes
                ]).mean())
        cf_free = {n: control.aware_edit_cf_free(
            acts[n], latents[n], dirs[n], f1[n], _typical_activation(fit_latents[n]),
            cf.source, cf.target) for n in nodes}
        cf_free_acc = control.agreement(ctx.run_argmax(cf_free), target)

        for k, acc in by_k.items():
            metrics[f"edit_accuracy_{attr}_k{k}"] = Metric(value=acc, supervised=sup_acc)
            metrics[f"weight_removed_{attr}_k{k}"] = Metric(value=weight_by_k[k],
                                                            supervised=sup_weight)
        metrics[f"min_budget_{attr}"] = Metric(
            value=None if min_k is None else float(min_k),
            reason=None if min_k is not None else
            f"no budget up to {max(control.BUDGETS)} reaches the supervised edit accuracy "
            f"{sup_acc:.3f}")
        metrics[f"aware_edit_accuracy_{attr}"] = Metric(value=aware_by_n[1], supervised=sup_acc)
        for n_swap, acc in aware_by_n.items():
            if n_swap != 1:
                metrics[f"aware_edit_accuracy_{attr}_n{n_swap}"] = Metric(value=acc,
                                                                          supervised=sup_acc)
        metrics[f"aware_edit_accuracy_cf_free_{attr}"] = Metric(value=cf_free_acc,
                                                                supervised=sup_acc)
        metrics[f"aware_weight_removed_{attr}"] = Metric(value=aware_weight,
                                                         supervised=sup_weight)
        details.append(AttributeControl(
            attribute=attr,
            causally_relevant=control.causally_relevant(agreement),
            no_intervention_agreement=agreement,
            supervised_edit_accuracy=sup_acc,
            edit_accuracy_by_budget={str(k): v for k, v in by_k.items()},
            weight_removed_by_budget={str(k): v for k, v in weight_by_k.items()},
            min_budget_reaching_supervised=min_k,
            aware_edit_accuracy=aware_by_n[1],
            aware_edit_accuracy_by_exchanges={str(k): v for k, v in aware_by_n.items()},
            aware_edit_accuracy_cf_free=cf_free_acc,
            aware_weight_removed=aware_weight,
            supervised_weight=sup_weight,
        ))
    return metrics, details
