"""Control axis for one evaluation unit: can the model be steered by editing SAE latents as well
as by editing the supervised features? (maths in sae_bench/axes/control.py)"""

from __future__ import annotations

import torch

from sae_bench.axes import control
from sae_bench.axes.interpretability import value_scores
from sae_bench.context import EvalContext
from sae_bench.nodes import CrossSection, Node
from sae_bench.reference import supervised_edit
from sae_bench.results import AttributeControl, Metric
from sae_bench.sae import SAE


def _typical_activation(latents: torch.Tensor) -> torch.Tensor:
    """Mean activation of each latent over the prompts where it fires [d_sae]."""
    active = latents > 0
    return (latents * active).sum(0) / active.sum(0).clamp(min=1)


def control_scores(
    ctx: EvalContext, cs: CrossSection, saes: dict[Node, SAE],
    acts: dict[Node, torch.Tensor], latents: dict[Node, torch.Tensor],
    recon: dict[Node, torch.Tensor],
) -> tuple[dict[str, Metric], list[AttributeControl]]:
    d = ctx.eval_data
    nodes = cs.nodes
    dirs = {n: saes[n].decoder_directions().float() for n in nodes}
    dicts = ctx.dictionaries(nodes)
    fit = ctx.fit_data
    fit_acts = ctx.fit_activations(nodes)
    fit_latents = {n: saes[n].encode(fit_acts[n]).float() for n in nodes}
    sup_recon = {n: ctx.supervised_reconstruction(n) for n in nodes}
    metrics: dict[str, Metric] = {}
    details = []
    for attr in cs.attributes:
        cf = d.counterfactuals[attr]
        target = ctx.counterfactual_target(cs, attr)
        agreement = control.agreement(ctx.clean_argmax, target)
        sup_acc = supervised_edit(ctx, cs, attr)["mean"]
        cf_acts = ctx.counterfactual_activations(attr, nodes)
        beta = {n: saes[n].encode(cf_acts[n]).float() for n in nodes}
        orders = {
            n: control.greedy_order(latents[n], beta[n], dirs[n], cf_acts[n] - acts[n])
            for n in nodes
        }
        by_k = {}
        for k in control.BUDGETS:
            edited = {n: control.greedy_edit(acts[n], latents[n], beta[n], dirs[n], orders[n], k)
                      for n in nodes}
            by_k[k] = control.agreement(ctx.run_argmax(edited), target)
        min_k = control.smallest_budget(by_k, sup_acc)

        # Interpretation-aware: latents ranked by F1 on the fit prompts, the only prompts that
        # contain the counterfactual names (eval prompts use the other half of the names).
        n_values = len(d.attributes[attr].values)
        aware, removed_weight, sup_weight = {}, [], []
        for n in nodes:
            f1 = value_scores(fit_latents[n] > 0, fit.labels[attr], n_values).f1
            aware[n], removed, _ = control.aware_edit(
                acts[n], latents[n], dirs[n], f1, _typical_activation(fit_latents[n]),
                cf.source, cf.target)
            rows = torch.arange(len(removed))
            part = latents[n][rows, removed.clamp(min=0), None] * dirs[n][removed.clamp(min=0)]
            part = part * (removed >= 0)[:, None]
            removed_weight.append(control.weight(part, recon[n], saes[n].output_bias.float()))
            u = dicts[n]["mean"].features[attr][cf.source]
            sup_weight.append(control.weight(u, sup_recon[n], dicts[n]["mean"].mean))
        aware_acc = control.agreement(ctx.run_argmax(aware), target)
        w_removed = float(torch.stack(removed_weight).mean())
        w_sup = float(torch.stack(sup_weight).mean())

        for k, acc in by_k.items():
            metrics[f"edit_accuracy_{attr}_k{k}"] = Metric(value=acc, supervised=sup_acc)
        metrics[f"min_budget_{attr}"] = Metric(
            value=None if min_k is None else float(min_k),
            reason=None if min_k is not None else
            f"no budget up to {max(control.BUDGETS)} reaches the supervised edit accuracy "
            f"{sup_acc:.3f}")
        metrics[f"aware_edit_accuracy_{attr}"] = Metric(value=aware_acc, supervised=sup_acc)
        metrics[f"weight_removed_{attr}"] = Metric(value=w_removed, supervised=w_sup)
        details.append(AttributeControl(
            attribute=attr,
            causally_relevant=control.causally_relevant(agreement),
            no_intervention_agreement=agreement,
            supervised_edit_accuracy=sup_acc,
            edit_accuracy_by_budget={str(k): v for k, v in by_k.items()},
            min_budget_reaching_supervised=min_k,
            aware_edit_accuracy=aware_acc,
            weight_removed=w_removed,
            supervised_weight=w_sup,
        ))
    return metrics, details
