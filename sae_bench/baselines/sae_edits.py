"""The control axis's SAE edits (greedy at each budget, the paper's aware swap) scored exactly
like the baselines, so one table and one plot can hold both (issue 16)."""

from __future__ import annotations

from sae_bench.axes import control
from sae_bench.axes.interpretability import value_scores
from sae_bench.baselines.editset import eval_edit_set
from sae_bench.baselines.run import eval_reference
from sae_bench.baselines.schema import EditScore
from sae_bench.baselines.scores import score
from sae_bench.engine.context import EvalContext
from sae_bench.models.nodes import CrossSection, Node
from sae_bench.sae import SAE


def sae_edit_scores(ctx: EvalContext, cs: CrossSection, attribute: str, saes: dict[Node, SAE],
                    label: str) -> list[EditScore]:
    """`{label}:k{k}` for the greedy edit with k latents per node, `{label}:aware` for the
    aware swap (one latent out, one in, per node). Size = latents changed over the nodes."""
    nodes = cs.nodes
    eval_set = eval_edit_set(ctx, cs, attribute)
    ref = eval_reference(ctx, cs, attribute)
    acts, cf_acts = eval_set.acts, eval_set.cf_acts
    dirs = {n: saes[n].decoder_directions().float() for n in nodes}
    alpha = {n: saes[n].encode(acts[n]).float() for n in nodes}
    beta = {n: saes[n].encode(cf_acts[n]).float() for n in nodes}
    orders = {n: control.greedy_order(alpha[n], beta[n], dirs[n], cf_acts[n] - acts[n])
              for n in nodes}
    out = []
    for k in control.BUDGETS:
        edited = {n: control.greedy_edit(acts[n], alpha[n], beta[n], dirs[n], orders[n], k)
                  for n in nodes}
        out.append(score(eval_set, ref, f"{label}:k{k}", edited, k * len(nodes)))
    fit = ctx.fit_data
    n_values = len(ctx.eval_data.attributes[attribute].values)
    fit_acts = ctx.fit_activations(nodes)
    cf = ctx.eval_data.counterfactuals[attribute]
    edited = {}
    for n in nodes:
        f1 = value_scores(saes[n].encode(fit_acts[n]).float() > 0, fit.labels[attribute],
                          n_values).f1
        edited[n] = control.aware_edit(acts[n], alpha[n], beta[n], dirs[n], f1, cf.source,
                                       cf.target)[0]
    out.append(score(eval_set, ref, f"{label}:aware", edited, 2 * len(nodes)))
    return out
