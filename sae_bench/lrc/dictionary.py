"""The LRC dictionary at a node of an evaluation context: a `SupervisedDictionary` (method
"lrc") whose features are linear relational concepts (`sae_bench.lrc.concepts`), so every axis
scores it exactly as it scores the mean and least-squares dictionaries.

Prompts (all fit prompts; eval prompts are never used to build or choose it):
- the mean Jacobian averages over the first `N_JACOBIAN` correctly answered estimation prompts
  (Chanin et al. fit LREs on prompts the model answers correctly);
- the class-conditional means of the downstream object use every estimation prompt (they
  describe what the model computes, right or wrong, and keep every value the label-based
  dictionaries have);
- the rank ρ is chosen on the last `N_SELECT` fit prompts, held out from the estimation: the
  rank whose reconstruction ā + Σ_i u_{i, attr_i(p)}, patched in at the node alone, keeps the
  clean top-1 token on most prompts (ties: smaller mean |ΔLD|, then smaller rank); the final
  features are then re-estimated on all fit prompts at that rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sae_bench.engine.runner import InterventionRunner
from sae_bench.engine.suffix_forward import readout
from sae_bench.errors import UserError
from sae_bench.lrc.concepts import lrc_features, max_rank, rank_grid
from sae_bench.lrc.jacobian import downstream_node, node_jacobian
from sae_bench.lrc.records import LRCFit, RankPoint
from sae_bench.models.nodes import Node
from sae_bench.truth.dictionaries import SupervisedDictionary

METHOD = "lrc"
N_JACOBIAN = 256  # a few hundred prompts keep the Jacobian CPU-cheap
N_SELECT = 512
# The attribute whose value is the answer token: the downstream object (read out as the answer
# logit) is validated for it; the other attributes' concepts are experimental.
ANSWER_ATTRIBUTE = {"ioi": "IO"}


def experimental_attributes(task_name: str, attributes: Sequence[str]) -> list[str]:
    return [a for a in attributes if a != ANSWER_ATTRIBUTE.get(task_name)]


def _dictionary(mean: torch.Tensor, features: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor]) -> SupervisedDictionary:
    return SupervisedDictionary(method=METHOD, mean=mean.float(),
                                features={k: v.float() for k, v in features.items()},
                                present=present)


# `ctx` is an `EvalContext`; not imported by name because the context builds its LRC
# dictionaries through this module (imports flow engine -> lrc, never back).
EvalContext = Any


def fit_lrc(ctx: EvalContext, node: Node) -> tuple[SupervisedDictionary, LRCFit]:
    """The LRC dictionary at `node` and how it was built."""
    fit = ctx.fit_data
    n = len(fit)
    n_select = min(N_SELECT, n // 5)
    if n_select < 1:
        raise UserError(f"the LRC dictionary needs at least 5 fit prompts (one in five is held "
                        f"out to choose its rank); got --n-fit {n}.")
    obj = downstream_node(ctx.model)
    acts = ctx.fit_activations([node, obj])
    a, h = acts[node], acts[obj]
    dtype = ctx.model.cfg.dtype
    _, top = readout(ctx.model, h.to(ctx.model.cfg.device, dtype),
                     fit.answer_ids.to(ctx.model.cfg.device),
                     fit.distractor_ids.to(ctx.model.cfg.device), argmax=True)
    assert top is not None  # asked for with argmax=True
    correct = (top.cpu() == fit.answer_ids).nonzero().flatten()
    est = torch.arange(n - n_select)
    sel = torch.arange(n - n_select, n)
    jac_rows = correct[correct < n - n_select][:N_JACOBIAN]
    jac_data = fit.subset(jac_rows)
    with ctx.progress.step(f"LRC Jacobian at {node.name} ({len(jac_rows)} prompts)"):
        jacobian = node_jacobian(ctx.model, jac_data.tokens, jac_data.positions, node,
                                 a[jac_rows], batch_size=ctx.batch_size)
    n_values = {k: len(attr.values) for k, attr in fit.attributes.items()}
    labels = fit.labels
    mean = a.double().mean(0)

    sel_data = fit.subset(sel)
    runner = InterventionRunner(ctx.model, sel_data.tokens, sel_data.positions,
                                sel_data.answer_ids, sel_data.distractor_ids,
                                batch_size=ctx.batch_size, cache_from_layer=node.layer)
    clean = runner.clean()
    sweep = []
    with ctx.progress.step(f"LRC rank sweep at {node.name}"):
        for rank in rank_grid(jacobian):
            feats, present = lrc_features(jacobian, h[est], {k: v[est] for k, v in
                                                             labels.items()}, n_values, rank)
            # A value unseen in the estimation prompts has a zero feature: held-out prompts
            # with it are reconstructed without that attribute (rare: 20k prompts, 200 names).
            recon = mean.expand(n_select, -1).clone()
            for k, f in feats.items():
                recon += f[labels[k][sel]]
            out = runner.run({node: recon.float()}, argmax=True)
            assert out.argmax is not None and clean.argmax is not None
            sweep.append(RankPoint(
                rank=rank,
                agreement=float((out.argmax == clean.argmax).float().mean()),
                mean_abs_logit_diff_error=float((out.logit_diff - clean.logit_diff).abs()
                                                .mean()),
            ))
    best = min(sweep, key=lambda p: (-p.agreement, p.mean_abs_logit_diff_error, p.rank))
    features, present = lrc_features(jacobian, h, labels, n_values, best.rank)
    record = LRCFit(
        node=node.name, downstream_object=obj.name, rank=best.rank,
        max_rank=max_rank(jacobian), n_jacobian_prompts=len(jac_rows),
        n_selection_prompts=n_select, sweep=sweep,
        experimental_attributes=experimental_attributes(ctx.task.name, list(n_values)),
    )
    return _dictionary(mean, features, present), record


def lrc_fits(ctx: EvalContext, nodes: Sequence[Node]) -> dict[Node, tuple[SupervisedDictionary,
                                                                          LRCFit]]:
    """{node: (dictionary, record)}, computed once per context and cached on disk beside the
    label-based dictionaries: a fit costs a Jacobian and a rank sweep (~20 s a node on 2 cores),
    and `reference --lrc` and every `run --comparator lrc` need the same ones."""
    return {node: ctx.memo(("lrc", node), lambda node=node: _cached_or_fitted(ctx, node))
            for node in nodes}


RECORD_KEY = "lrc_fit"  # the entry's metadata key holding the LRCFit as JSON


def _cached_or_fitted(ctx: EvalContext, node: Node) -> tuple[SupervisedDictionary, LRCFit]:
    key = ctx.cache_key(node, METHOD, batch_size=ctx.batch_size, n_jacobian=N_JACOBIAN,
                        n_select=N_SELECT)
    found = ctx.cache.get_with_metadata(key, required=(RECORD_KEY,))
    if found is not None:
        dictionary, meta = found
        try:
            return dictionary, LRCFit.model_validate_json(meta[RECORD_KEY])
        except ValueError:  # a record this version cannot read: refit and overwrite
            ctx.cache.warn(f"sae-bench: warning: the cached LRC fit record at {node.name} does "
                           "not match this version; rebuilding it.")
    dictionary, record = fit_lrc(ctx, node)
    ctx.cache.put(key, dictionary, node=node.name, model=ctx.model_name,
                  **{RECORD_KEY: record.model_dump_json()})
    return dictionary, record
