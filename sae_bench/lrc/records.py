"""Typed records of an LRC fit and of the SAE-vs-dictionaries comparison, carried by the
reference document (`CrossSectionReference.lrc`) and by results written with `--comparator lrc`
(`EvaluationResult.lrc`)."""

from __future__ import annotations

from sae_bench.results.records import Frozen


class RankPoint(Frozen):
    """One rank of the sweep, scored on held-out fit prompts (never on eval prompts)."""

    rank: int
    # share of held-out fit prompts whose top-1 token with the LRC reconstruction patched in is
    # the clean run's
    agreement: float
    # mean |LD(reconstruction) - LD(clean)| over the same prompts (tie-break)
    mean_abs_logit_diff_error: float


class LRCFit(Frozen):
    """How the LRC dictionary at one node was built."""

    node: str
    downstream_object: str  # node spec of h (the final residual stream at END)
    rank: int  # the chosen rank rho
    max_rank: int  # numerical rank of the mean Jacobian
    n_jacobian_prompts: int  # correctly answered fit prompts the mean Jacobian averages over
    n_selection_prompts: int  # held-out fit prompts the rank is chosen on
    sweep: list[RankPoint]
    # attributes whose concepts rest on a downstream object that is a research choice (the
    # object is validated for the answer attribute only: its readout is the answer logit)
    experimental_attributes: list[str]


class ComparisonRow(Frozen):
    """One metric of one unit: the SAE beside the label-based and the LRC dictionary."""

    unit: str
    node: str | None  # per-node metrics; None for a cross-section's
    metric: str
    sae: float | None
    labels: float | None  # the label-based comparator (lstsq), measured the same way
    lrc: float | None
    beats_labels: bool | None  # None where a value is missing or the metric has no direction
    loses_to_lrc: bool | None
    experimental: bool  # the metric concerns an experimental attribute


class LRCComparison(Frozen):
    """Where an SAE beats the label-based dictionary but loses to the LRC one."""

    labels_method: str  # which label-based dictionary is the `labels` column
    fits: list[LRCFit]
    rows: list[ComparisonRow]
    # "unit[/node]: metric" of the rows with beats_labels and loses_to_lrc
    between: list[str]
