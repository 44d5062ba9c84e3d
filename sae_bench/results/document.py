"""The result document of `sae-bench run`: typed, immutable, versioned.

`schema_version` comes first; every metric sits in a flat category (`approximation`,
`interpretability`, ...) as {value, supervised, reason}: `supervised` is the supervised
dictionary's score at the same nodes, and a missing value is `null` with a `reason`, never a
sentinel. What each metric means and which way is better is in `metric_info`.
The JSON Schema is generated from these models and committed (sae_bench/schemas/).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from sae_bench.baselines.schema import CrossSectionBaselines
from sae_bench.lrc.records import LRCComparison
from sae_bench.results.metrics import MetricInfo, info
from sae_bench.results.provenance import Provenance
from sae_bench.results.records import Frozen, OmitsAbsent, load_versioned
from sae_bench.truth.reference import ModelScores

SCHEMA_VERSION = "2.0"


class Metric(Frozen):
    value: float | None
    supervised: float | None = None
    reason: str | None = None


Category = dict[str, Metric]


class LatentInterpretation(Frozen):
    latent: int
    attribute: str
    values: list[str]
    precision: float
    recall: float
    f1: float


class SweepPoint(Frozen):
    threshold: float
    # share of active (prompt, latent) pairs whose latent has F1 >= threshold (a count, so
    # rescaling a latent and its decoder row does not move it)
    latents_kept_fraction: float
    # the paper's: active latents with F1 < threshold subtracted from the activation (the SAE's
    # error term stays in)
    sufficiency_kept: float
    # variant: only latents at F1 >= threshold decoded (error term and the rest dropped)
    sufficiency_kept_decoded: float
    # latents at F1 >= threshold mean-ablated (to their fit-prompt means) in the activation;
    # null where necessity is ill-conditioned (see axes.approximation.MIN_ABLATION_GAP)
    necessity_removed: float | None


class AttributeControl(Frozen):
    """Steering one attribute at a cross-section; accuracies are agreement with the target (the
    model's top-1 token with the nodes patched from the counterfactual prompt)."""

    attribute: str
    causally_relevant: bool
    no_intervention_agreement: float
    supervised_edit_accuracy: float
    edit_accuracy_by_budget: dict[str, float]  # latents edited per node -> accuracy
    # latents edited per node -> mean weight (share of the reconstruction) of the latents the
    # greedy edit changes, at their base values (paper Fig. 4)
    weight_removed_by_budget: dict[str, float]
    min_budget_reaching_supervised: int | None  # None: not reached with any budget
    aware_edit_accuracy: float  # the paper's rule: one latent out, one in
    aware_edit_accuracy_by_exchanges: dict[str, float]  # latents swapped per node -> accuracy
    aware_edit_accuracy_cf_free: float  # variant: target latent added at its typical value
    aware_weight_removed: float  # mean weight of the latent the aware edit removes
    supervised_weight: float  # the same for the supervised source feature


class OcclusionResult(Frozen):
    """Is a causally relevant, linearly decodable name attribute hidden behind another one?"""

    attribute: str
    coverage: float  # share of its values (in eval prompts) with a latent at F1 >= 0.5
    ld_effect: float  # |LD change| / |clean LD| when its supervised feature is removed
    causally_relevant: bool
    decodability: float  # held-out accuracy of a linear probe (fit prompts -> eval prompts)
    occluded: bool
    occluded_by: str | None
    evidence: str


class SplitResult(Frozen):
    """Is one value of a binary attribute spread over many precise latents?"""

    attribute: str
    value: str
    latents: list[int]  # latents with precision >= 0.9 for the value, by recall
    count: int
    best_single_recall: float
    union_recall: float
    mean_pairwise_jaccard: float | None  # None with fewer than two latents
    split: bool
    precise_by_chance: int  # precise latents left out: not significant (binomial test)
    explained_by_richer: int  # precise latents left out: a richer property explains them


class NodeResult(Frozen):
    node: str
    sae: str  # sha256 of the SAE's file(s)
    approximation: Category
    interpretability: Category
    occlusion: Category
    oversplitting: Category
    top_latents: list[LatentInterpretation]
    occlusion_details: list[OcclusionResult]
    oversplitting_details: list[SplitResult]


class UnitResult(Frozen):
    """One evaluation unit: the nodes patched together (a cross-section or a single node)."""

    name: str
    nodes: list[str]
    attributes: list[str]
    approximation: Category
    interpretability: Category
    control: Category
    causal_sweep: list[SweepPoint]
    control_details: list[AttributeControl]
    per_node: list[NodeResult]


class SAEInfo(Frozen):
    node: str
    format: str
    architecture: str
    d_in: int
    d_sae: int
    k: float | None
    input_scale: float
    source: str | None
    sha256: str | None


class EvaluationResult(OmitsAbsent):
    schema_version: str = Field(default=SCHEMA_VERSION)
    kind: str = "sae_evaluation"
    provenance: Provenance
    # the supervised dictionary every `supervised` value comes from ("lstsq", "mean" or "lrc")
    comparator: str
    warnings: list[str]
    model: ModelScores
    saes: list[SAEInfo]
    units: list[UnitResult]
    metric_info: dict[str, MetricInfo]
    # Control baselines (issue 16) at each unit's cross-section: methods that need no SAE
    # (DiffMean, steering vector, activation scaling), scored like the SAE edits.
    control_baselines: list[CrossSectionBaselines] = Field(default_factory=list)

    # comparator "lrc" only: the SAE beside the label-based and the LRC dictionary, metric by
    # metric. Absent from the JSON otherwise (an additive field: older documents still load).
    lrc: LRCComparison | None = None
    omit_when_absent = ("lrc",)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def metric_info_for(units: list[UnitResult]) -> dict[str, MetricInfo]:
    names: set[str] = set()
    for u in units:
        for cat in (u.approximation, u.interpretability, u.control):
            names.update(cat)
        for n in u.per_node:
            for cat in (n.approximation, n.interpretability, n.occlusion, n.oversplitting):
                names.update(cat)
    return {name: info(name) for name in sorted(names)}


def json_schema() -> str:
    return json.dumps(EvaluationResult.model_json_schema(), indent=2, sort_keys=True) + "\n"


# The schema stays in sae_bench/schemas/ (package data, linked from the README).
SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "result.schema.json"


def load_result(path: Path | str) -> EvaluationResult:
    return load_versioned(path, EvaluationResult, schema="result", version=SCHEMA_VERSION,
                          command="run")


def write_schema() -> Path:
    """Regenerate the committed JSON schema (`python -m sae_bench.results`)."""
    from sae_bench.fileio.atomic import write_text_atomic

    write_text_atomic(SCHEMA_PATH, json_schema())
    return SCHEMA_PATH


if __name__ == "__main__":  # also reachable as python -m sae_bench.results
    print(f"wrote {write_schema()}")
