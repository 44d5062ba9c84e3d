"""The control baselines of every cross-section in an evaluation context, computed once per
context (they do not depend on the SAE) and cached on disk like the supervised dictionaries:
the learned parameters (DiffMean scale, steering vectors, scalars) are stored in the context's
cache, keyed by model, weights, nodes, task, seed, fit prompts and training settings; the scores
on the eval prompts are recomputed from them (a few patched runs)."""

from __future__ import annotations

from dataclasses import asdict

import torch

from sae_bench.axes import control
from sae_bench.baselines import diffmean, scaling, steering
from sae_bench.baselines.editset import PREFER_S, EditSet, eval_edit_set, fit_edit_set
from sae_bench.baselines.forward import end_log_probs
from sae_bench.baselines.objective import Settings
from sae_bench.baselines.schema import CrossSectionBaselines, EditBaselines, SiteScalar
from sae_bench.baselines.scores import Reference, not_applicable, reference, score
from sae_bench.engine.cache import DictionaryCache
from sae_bench.engine.context import EvalContext
from sae_bench.models.nodes import CrossSection, Node

# Bumped when what is learned changes (objective, training, sweep), so the cache is refilled.
BASELINES_VERSION = 1
NAME_SWAP = ("a name swap cannot be done by one fixed vector or scalar: which direction to add "
             "depends on the names going out and coming in (DiffMean does it with one "
             "difference vector per value pair)")


def edits_of(ctx: EvalContext, cs: CrossSection) -> list[str]:
    """The control axis's attributes at `cs`, then the binary `prefer_S` edit."""
    return [*cs.attributes, PREFER_S]


def is_binary(ctx: EvalContext, edit: str) -> bool:
    return edit == PREFER_S or len(ctx.eval_data.attributes[edit].values) == 2


def _learned(ctx: EvalContext, cs: CrossSection, name: str, shape: tuple[int, ...],
             learn) -> torch.Tensor:
    """A learned tensor from the disk cache, else `learn()` (then staged into the cache)."""
    key = DictionaryCache.key(
        model=ctx.model_name, fingerprint=ctx.fingerprint, node=[n.name for n in cs.nodes],
        task=ctx.task.name, task_version=ctx.task.version, seed=ctx.seed, n_fit=ctx.n_fit,
        method=f"control_baseline:{name}", baselines_version=BASELINES_VERSION,
        settings=asdict(Settings(seed=ctx.seed)),
    )
    found = ctx.cache.get_activations(key, shape=shape)
    if found is not None:
        return found
    value = learn().reshape(shape).float()
    ctx.cache.put_activations(key, value, node=cs.name, model=ctx.model_name)
    return value


def _split(flat: torch.Tensor, nodes: tuple[Node, ...], widths: list[int]) -> dict:
    return dict(zip(nodes, flat.split(widths), strict=True))


def _fit_accuracy(fit_set: EditSet, edited) -> float:
    top = fit_set.runner.run(edited).argmax
    assert top is not None
    return float((top == fit_set.target).float().mean())


def eval_reference(ctx: EvalContext, cs: CrossSection, edit: str) -> Reference:
    """The eval prompts' reference runs for one edit, memoised (the clean distribution once)."""
    clean = ctx.memo("baseline_clean_log_probs", lambda: end_log_probs(ctx.runner, {}))
    return ctx.memo(("baseline_reference", cs.nodes, edit),
                    lambda: reference(eval_edit_set(ctx, cs, edit), clean))


def edit_baselines(ctx: EvalContext, cs: CrossSection, edit: str) -> EditBaselines:
    nodes = cs.nodes
    fit_set, eval_set = fit_edit_set(ctx, cs, edit), eval_edit_set(ctx, cs, edit)
    ref = eval_reference(ctx, cs, edit)
    mean_dicts = {n: d["mean"] for n, d in ctx.dictionaries(nodes).items()}
    features = (4 if edit == PREFER_S else 2) * len(nodes)  # features out and in, per node
    scale = float(_learned(ctx, cs, f"diffmean:{edit}", (1,),
                           lambda: torch.tensor(diffmean.choose_scale(fit_set, mean_dicts)[0])))
    methods = [
        score(eval_set, ref, "diffmean_1", diffmean.diffmean_edit(eval_set, mean_dicts, 1.0),
              features, fit_edit_accuracy=_fit_accuracy(
                  fit_set, diffmean.diffmean_edit(fit_set, mean_dicts, 1.0)),
              hyperparameters={"scale": 1.0}),
        score(eval_set, ref, "diffmean", diffmean.diffmean_edit(eval_set, mean_dicts, scale),
              features, fit_edit_accuracy=_fit_accuracy(
                  fit_set, diffmean.diffmean_edit(fit_set, mean_dicts, scale)),
              hyperparameters={"scale": scale}),
    ]
    scalars: list[SiteScalar] = []
    if is_binary(ctx, edit):
        settings = Settings(seed=ctx.seed)  # the run's seed draws the mini-batches
        hyper = {k: float(v) for k, v in asdict(settings).items()}
        widths = [ctx.width(n) for n in nodes]
        with ctx.progress.step(f"control baselines: steering vector ({cs.name}, {edit})"):
            flat = _learned(ctx, cs, f"steering:{edit}", (sum(widths),), lambda: torch.cat(
                [v for v in steering.train_steering(fit_set, settings).values()]))
        vectors = _split(flat, nodes, widths)
        methods.append(score(
            eval_set, ref, "steering", steering.steering_edit(eval_set.acts, eval_set.sign(),
                                                               vectors),
            sum(widths), fit_edit_accuracy=_fit_accuracy(fit_set, steering.steering_edit(
                fit_set.acts, fit_set.sign(), vectors)), hyperparameters=hyper))
        with ctx.progress.step(f"control baselines: activation scaling ({cs.name}, {edit})"):
            flat = _learned(ctx, cs, f"scaling:{edit}", (len(nodes),), lambda: torch.stack(
                [a for a in scaling.train_scaling(fit_set, settings).values()]))
        alphas = dict(zip(nodes, flat, strict=True))
        methods.append(score(
            eval_set, ref, "scaling", scaling.scaling_edit(eval_set.acts, alphas), len(nodes),
            fit_edit_accuracy=_fit_accuracy(fit_set, scaling.scaling_edit(fit_set.acts, alphas)),
            hyperparameters=hyper))
        scalars = [SiteScalar(node=n.name, alpha=a) for n, a in scaling.localisation(alphas)]
    else:
        methods += [not_applicable("steering", NAME_SWAP), not_applicable("scaling", NAME_SWAP)]
    agreement = control.agreement(eval_set.clean_top, eval_set.target)
    return EditBaselines(
        edit=edit, kind="binary" if is_binary(ctx, edit) else "name_swap",
        target="the S name" if edit == PREFER_S else "top-1 token with the counterfactual patch",
        no_intervention_agreement=agreement,
        causally_relevant=control.causally_relevant(agreement), methods=methods,
        scalars=scalars)


def cross_section_baselines(ctx: EvalContext, cs: CrossSection) -> CrossSectionBaselines:
    def compute() -> CrossSectionBaselines:
        edits = [edit_baselines(ctx, cs, e) for e in edits_of(ctx, cs)]
        return CrossSectionBaselines(name=cs.name, nodes=[n.name for n in cs.nodes],
                                     n_train=len(fit_edit_set(ctx, cs, edits[0].edit)),
                                     n_eval=len(ctx.eval_data), edits=edits)

    return ctx.memo(("control_baselines", cs.name, cs.nodes), compute)


def control_baselines(ctx: EvalContext, cross_sections: list[CrossSection]
                      ) -> list[CrossSectionBaselines]:
    """One entry per distinct cross-section, in order."""
    seen, out = set(), []
    for cs in cross_sections:
        if (cs.name, cs.nodes) not in seen:
            seen.add((cs.name, cs.nodes))
            with ctx.progress.step(f"control baselines at {cs.name}"):
                out.append(cross_section_baselines(ctx, cs))
    return out
