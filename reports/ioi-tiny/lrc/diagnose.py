"""Why the LRC dictionary scores as it does at ioi-tiny's main node: per attribute, how its
concepts compare with the least-squares features, and the sufficiency of the lstsq dictionary
with one attribute's features replaced by the LRC ones. Uses the sae-bench cache
($SAE_BENCH_CACHE or ~/.cache/sae_bench) and the default prompt counts (20,000 / 5,000)."""

from __future__ import annotations

import torch

from sae_bench.axes.approximation import sufficiency
from sae_bench.engine.cache import DictionaryCache
from sae_bench.engine.context import EvalContext
from sae_bench.engine.suffix_forward import readout
from sae_bench.lrc.concepts import class_means
from sae_bench.lrc.dictionary import N_JACOBIAN, lrc_fits
from sae_bench.lrc.jacobian import downstream_node, node_jacobian
from sae_bench.models.nodes import Node
from sae_bench.models.registry import load_model
from sae_bench.progress import Progress
from sae_bench.tasks import get_task
from sae_bench.truth.dictionaries import SupervisedDictionary


def main() -> None:
    model = load_model("ioi-tiny")
    ctx = EvalContext(model=model, model_name="ioi-tiny", task=get_task("ioi"), seed=0,
                      n_fit=20_000, n_eval=5_000, cache=DictionaryCache(None),
                      progress=Progress(enabled=False), comparator="lrc")
    node = Node("blocks.0.hook_resid_post", "END")
    dicts = ctx.dictionaries([node])[node]
    fit = ctx.fit_data
    obj = downstream_node(model)
    h = ctx.fit_activations([obj])[obj]
    ((_, record),) = lrc_fits(ctx, [node]).values()
    # The LRC's own Jacobian prompts: the first correctly answered estimation prompts.
    _, top = readout(model, h, fit.answer_ids, fit.distractor_ids, argmax=True)
    assert top is not None
    n_est = len(fit) - record.n_selection_prompts
    rows = (top == fit.answer_ids)[:n_est].nonzero().flatten()[:N_JACOBIAN]
    jac = node_jacobian(model, fit.tokens[rows], {r: p[rows] for r, p in fit.positions.items()},
                        node, ctx.fit_activations([node])[node][rows])
    print(f"{node.name}, LRC rank {record.rank}/{record.max_rank}; medians over values")
    for attr in fit.attributes:
        lab = dicts["lstsq"].features[attr].double()
        lab = lab - lab.mean(0)  # lstsq features are identified up to a shift per attribute
        lrc = dicts["lrc"].features[attr].double()
        means, _ = class_means(h, fit.labels[attr], len(lab))
        shift = means - h.double().mean(0)
        ratio = (lrc.norm(dim=1) / lab.norm(dim=1)).median()
        cos = torch.nn.functional.cosine_similarity(lrc, lab, dim=1).median()
        through = ((lab @ jac.T).norm(dim=1) / shift.norm(dim=1)).median()
        mixed = SupervisedDictionary("mixed", dicts["lstsq"].mean,
                                     {**dicts["lstsq"].features, attr: dicts["lrc"].features[attr]},
                                     dicts["lstsq"].present)
        ld = ctx.runner.run({node: mixed.reconstruct(ctx.eval_data.labels)},
                            argmax=False).logit_diff
        print(f"{attr:<4} |u_lrc|/|u_lstsq| {ratio:.2f}  cos(u_lrc, u_lstsq) {cos:.2f}  "
              f"|J u_lstsq|/|E[h|v]-E[h]| {through:.2f}  sufficiency of lstsq with the lrc "
              f"{attr} concepts {sufficiency(ld, ctx.clean.logit_diff):.3f}")


if __name__ == "__main__":
    main()
