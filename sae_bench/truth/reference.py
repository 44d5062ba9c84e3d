"""Reference evaluation of the ground truth: how well do the supervised dictionaries themselves
approximate and control the model at each cross-section? Every SAE score is read against these.
"""

from __future__ import annotations

from sae_bench.axes import approximation, control
from sae_bench.engine.context import EvalContext
from sae_bench.lrc.records import LRCFit
from sae_bench.models.nodes import CrossSection
from sae_bench.results.provenance import Provenance
from sae_bench.results.records import Frozen, OmitsAbsent

REFERENCE_SCHEMA_VERSION = "1.0"


class ModelScores(Frozen):
    accuracy: float
    mean_logit_diff: float
    n_eval: int


class DictionaryScores(Frozen):
    sufficiency: float
    necessity: float | None
    necessity_reason: str | None = None
    logit_diff_reconstruction: float
    logit_diff_without_reconstruction: float


class AttributeEdit(Frozen):
    no_intervention_agreement: float
    causally_relevant: bool
    edit_accuracy: dict[str, float]  # dictionary method -> accuracy


class CrossSectionReference(OmitsAbsent):
    name: str
    description: str
    nodes: list[str]
    attributes_edited: list[str]
    clean_logit_diff: float
    mean_ablation_logit_diff: float
    dictionaries: dict[str, DictionaryScores]
    edits: dict[str, AttributeEdit]
    # how each node's LRC dictionary was built (`reference --lrc`); absent from the JSON when
    # not asked for, so documents without it are unchanged
    lrc: list[LRCFit] | None = None
    omit_when_absent = ("lrc",)


class ReferenceDocument(Frozen):
    schema_version: str = REFERENCE_SCHEMA_VERSION
    kind: str = "reference"
    provenance: Provenance
    model: ModelScores
    cross_sections: list[CrossSectionReference]


def model_scores(ctx: EvalContext) -> ModelScores:
    clean, d = ctx.clean, ctx.eval_data
    return ModelScores(
        accuracy=control.agreement(ctx.clean_argmax, d.answer_ids),
        mean_logit_diff=float(clean.logit_diff.mean()),
        n_eval=len(d),
    )


def supervised_approximation(ctx: EvalContext, cs: CrossSection) -> dict[str, DictionaryScores]:
    """Sufficiency and necessity of each dictionary method's reconstruction at `cs` (memoised:
    every SAE scored at these nodes is compared with the same numbers)."""

    def compute():
        dicts = ctx.dictionaries(cs.nodes)
        acts = ctx.eval_activations(cs.nodes)
        ld_clean = ctx.clean.logit_diff
        ld_ma = ctx.mean_ablation(cs).logit_diff
        scores = {}
        for method in ctx.methods:
            recon = {n: ctx.supervised_reconstruction(n, method) for n in cs.nodes}
            without = {
                n: approximation.without_reconstruction(acts[n], recon[n], dicts[n][method].mean)
                for n in cs.nodes
            }
            ld_recon = ctx.runner.run(recon, argmax=False).logit_diff
            ld_without = ctx.runner.run(without, argmax=False).logit_diff
            ok = approximation.ablation_gap_ok(ld_ma, ld_clean)
            scores[method] = DictionaryScores(
                sufficiency=approximation.sufficiency(ld_recon, ld_clean),
                necessity=approximation.necessity(ld_ma, ld_without, ld_clean) if ok else None,
                necessity_reason=None if ok else approximation.ill_conditioned_reason(
                    ld_ma, ld_clean),
                logit_diff_reconstruction=float(ld_recon.mean()),
                logit_diff_without_reconstruction=float(ld_without.mean()),
            )
        return scores

    return ctx.memo(("supervised_approximation", cs.name, cs.nodes), compute)


def supervised_edit(ctx: EvalContext, cs: CrossSection, attribute: str) -> dict[str, float]:
    """Edit accuracy of the supervised edit (remove one feature, add one) per dictionary method."""

    def compute():
        d = ctx.eval_data
        cf = d.counterfactuals[attribute]
        dicts = ctx.dictionaries(cs.nodes)
        acts = ctx.eval_activations(cs.nodes)
        target = ctx.counterfactual_target(cs, attribute)
        accuracy = {}
        for method in ctx.methods:
            edited = {
                n: dicts[n][method].edit(acts[n], attribute, cf.source, cf.target)
                for n in cs.nodes
            }
            accuracy[method] = control.agreement(ctx.run_argmax(edited), target)
        return accuracy

    return ctx.memo(("supervised_edit", cs.name, cs.nodes, attribute), compute)


def reference_cross_section(ctx: EvalContext, cs: CrossSection) -> CrossSectionReference:
    scores = supervised_approximation(ctx, cs)
    edits = {}
    for attribute in cs.attributes:
        target = ctx.counterfactual_target(cs, attribute)
        base_agreement = control.agreement(ctx.clean_argmax, target)
        edits[attribute] = AttributeEdit(
            no_intervention_agreement=base_agreement,
            causally_relevant=control.causally_relevant(base_agreement),
            edit_accuracy=supervised_edit(ctx, cs, attribute),
        )
    return CrossSectionReference(
        name=cs.name,
        description=cs.description,
        nodes=[n.name for n in cs.nodes],
        attributes_edited=list(cs.attributes),
        clean_logit_diff=float(ctx.clean.logit_diff.mean()),
        mean_ablation_logit_diff=float(ctx.mean_ablation(cs).logit_diff.mean()),
        dictionaries=scores,
        edits=edits,
        lrc=lrc_records(ctx, cs),
    )


def lrc_records(ctx: EvalContext, cs: CrossSection) -> list[LRCFit] | None:
    """How the cross-section's LRC dictionaries were built, or None when none were."""
    if "lrc" not in ctx.methods:
        return None
    from sae_bench.lrc.dictionary import lrc_fits

    return [record for _, record in lrc_fits(ctx, cs.nodes).values()]


def evaluate_reference(
    ctx: EvalContext, cross_sections: list[CrossSection], provenance: Provenance
) -> ReferenceDocument:
    ctx.plan([node for cs in cross_sections for node in cs.nodes])
    model = model_scores(ctx)
    results = []
    for cs in ctx.progress.bar(cross_sections, desc="cross-sections"):
        with ctx.progress.step(f"cross-section {cs.name}"):
            results.append(reference_cross_section(ctx, cs))
    return ReferenceDocument(provenance=provenance, model=model, cross_sections=results)
