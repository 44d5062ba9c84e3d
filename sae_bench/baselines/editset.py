"""The prompts one edit is learned or scored on, with everything its scores are read against.

Two sources, kept apart so that nothing learned ever sees an eval prompt:
- `fit_edit_set`: a sample of *fit* prompts (with counterfactuals) on which the DiffMean scale is
  chosen and steering vectors and scalars are trained;
- `eval_edit_set`: the context's eval prompts, clean run, counterfactual activations and targets,
  the same ones the SAE edits of the control axis are scored on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from sae_bench.engine import collect
from sae_bench.engine.context import EvalContext
from sae_bench.engine.runner import InterventionRunner
from sae_bench.models.nodes import CrossSection, Node
from sae_bench.tasks.base import TaskData

# Fit prompts drawn for learning the baselines (**choice**): a few hundred Adam steps on batches
# of them; the learned parameters are d numbers per node at most, so 2,048 prompts are plenty.
N_TRAIN = 2048


# The binary edit of Stoehr et al.'s IOI experiment (**choice**, beside the control axis's
# attribute edits): make the model prefer the S name over IO. Its target is the S token itself;
# its supervised (DiffMean) form swaps the two names' roles: IO's feature for the IO name and
# S's for the S name out, IO's for the S name and S's for the IO name in.
PREFER_S = "prefer_S"


@dataclass(frozen=True)
class EditSet:
    """One attribute's edit at one cross-section on one prompt set.

    acts, cf_acts: {node: [n, width]} clean and counterfactual activations (cf_acts empty for
    `PREFER_S`, which has no counterfactual prompt); source, target_value: [n] value indices
    before and after the edit; target: [n] the token the edit must make the top-1 at END (the
    model's top-1 with the nodes patched from the counterfactual prompt; for `PREFER_S` the S
    name); clean_top: [n] unpatched top-1.
    """

    data: TaskData
    attribute: str
    nodes: tuple[Node, ...]
    acts: Mapping[Node, torch.Tensor]
    cf_acts: Mapping[Node, torch.Tensor]
    source: torch.Tensor
    target_value: torch.Tensor
    target: torch.Tensor
    clean_top: torch.Tensor
    runner: InterventionRunner

    def __len__(self) -> int:
        return len(self.data)

    def sign(self) -> torch.Tensor:
        """[n] +1 when a binary attribute goes from value 0 to 1, −1 the other way: a single
        vector v flips both ways as a + sign·v (the DiffMean of a binary edit has this form).
        `PREFER_S` goes one way only: +1."""
        if self.attribute == PREFER_S:
            return torch.ones(len(self))
        return torch.where(self.source == 0, 1.0, -1.0)


def fit_data(ctx: EvalContext) -> TaskData:
    """The fit prompts (with counterfactuals) every baseline learns from, memoised."""
    n = min(N_TRAIN, ctx.n_fit)
    return ctx.memo(("baseline_fit_data", n), lambda: ctx.task.build(
        ctx.model, n=n, seed=ctx.seed, split="fit", counterfactuals=True))


def _fit_runner(ctx: EvalContext) -> InterventionRunner:
    # Caches only the layers the context's nodes patch, as the eval runner does: caching every
    # layer held 2 x 12 + 12 [n, seq, d_model] tensors of the fit prompts on GPT-2 Small (the
    # run's peak memory fell from 6.44 to 3.25 GB with this and `forward.end_logits`).
    def make():
        d = fit_data(ctx)
        with ctx.progress.step("clean run on baseline fit prompts"):
            return InterventionRunner(ctx.model, d.tokens, d.positions, d.answer_ids,
                                      d.distractor_ids, batch_size=ctx.batch_size,
                                      cache_from_layer=min(ctx.planned_layers, default=0),
                                      resid_layers=ctx.planned_layers or None)

    return ctx.memo("baseline_fit_runner", make)


def _prefer_s(d: TaskData, nodes: tuple[Node, ...], acts, runner: InterventionRunner,
              clean_top: torch.Tensor) -> EditSet:
    return EditSet(d, PREFER_S, nodes, acts, {}, d.labels["IO"], d.labels["S"], d.distractor_ids,
                   clean_top, runner)


def fit_edit_set(ctx: EvalContext, cs: CrossSection, attribute: str) -> EditSet:
    def make() -> EditSet:
        d = fit_data(ctx)
        runner = _fit_runner(ctx)
        if attribute == PREFER_S:
            top = runner.clean().argmax
            assert top is not None
            return _prefer_s(d, cs.nodes, runner.activations(cs.nodes), runner, top)
        cf = d.counterfactuals[attribute]
        acts = runner.activations(cs.nodes)
        cf_acts = collect.node_activations(ctx.model, cf.tokens, cf.positions, list(cs.nodes),
                                           batch_size=ctx.batch_size)
        target = runner.run(cf_acts).argmax
        clean_top = runner.clean().argmax
        assert target is not None and clean_top is not None
        return EditSet(d, attribute, cs.nodes, acts, cf_acts, cf.source, cf.target, target,
                       clean_top, runner)

    return ctx.memo(("baseline_fit_set", cs.nodes, attribute), make)


def eval_edit_set(ctx: EvalContext, cs: CrossSection, attribute: str) -> EditSet:
    d = ctx.eval_data
    if attribute == PREFER_S:
        return _prefer_s(d, cs.nodes, ctx.eval_activations(cs.nodes), ctx.runner,
                         ctx.clean_argmax)
    cf = d.counterfactuals[attribute]
    return EditSet(d, attribute, cs.nodes, ctx.eval_activations(cs.nodes),
                   ctx.counterfactual_activations(attribute, cs.nodes), cf.source, cf.target,
                   ctx.counterfactual_target(cs, attribute), ctx.clean_argmax, ctx.runner)
