"""Typed results of the control baselines (a category of the result document of `sae-bench
run`, `control_baselines`, one entry per cross-section; they do not depend on the SAE)."""

from __future__ import annotations

from pydantic import Field

from sae_bench.results.records import Frozen


class EditScore(Frozen):
    """One method's edit, scored on the eval prompts against the control axis's targets."""

    method: str  # "diffmean_1" (the supervised mean edit), "diffmean", "steering", "scaling"
    applicable: bool
    reason: str | None = None  # why not applicable, or why a score is null
    edit_accuracy: float | None = None  # share of prompts whose top-1 is the target
    # mean LD change over the reference's: (LD_edit − LD_clean) / (LD_ref − LD_clean), LD_ref
    # from the counterfactual patch (prefer_S: −LD_clean, the two names' logits exchanged)
    ld_change: float | None = None
    kl_to_patched: float | None = None  # mean KL(patched ‖ edited) of the next token at END
    # mean KL(clean ‖ edited) over every token but the target and the clean top-1 (what the
    # faithfulness term of the learned methods trains on)
    kl_others: float | None = None
    size: int | None = None  # numbers the edit sets or changes over the cross-section's nodes
    l2_norm: float | None = None  # mean over prompts of ‖edited − clean‖ over all nodes
    fit_edit_accuracy: float | None = None  # on the fit prompts it was chosen or trained on
    hyperparameters: dict[str, float] = Field(default_factory=dict)


class SiteScalar(Frozen):
    node: str
    alpha: float


class EditBaselines(Frozen):
    edit: str  # an attribute the control axis edits, or "prefer_S"
    kind: str  # "binary" (one vector or scalar can do it) or "name_swap" (per value only)
    target: str  # what the edit must make the top-1 token
    no_intervention_agreement: float
    causally_relevant: bool
    methods: list[EditScore]
    # activation scaling's α per node, largest |α − 1| first (empty where not applicable)
    scalars: list[SiteScalar]


class CrossSectionBaselines(Frozen):
    name: str
    nodes: list[str]
    n_train: int  # fit prompts the baselines were chosen or trained on
    n_eval: int
    edits: list[EditBaselines]
