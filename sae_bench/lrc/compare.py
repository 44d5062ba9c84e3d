"""Where an SAE beats the label-based dictionary but loses to the LRC one.

For a run with `--comparator lrc` every `supervised` value in the result is the LRC
dictionary's; this module measures the label-based dictionary (least squares, the default
comparator) the same way at the same nodes and lines the three up, metric by metric:

- per unit: sufficiency, necessity, and for each causally relevant attribute the SAE's edit
  accuracy with the budget of the supervised edit (the paper's aware edit: one latent out, one
  in) and with two latents per node (the leaderboard's headline) against the supervised edit;
- per node: the F1 of the argmax encoding, as coverage (share of an attribute's values with a
  latent / code at F1 ≥ 0.8) and the mean best F1 of the latents / codes.

An attribute the counterfactual patch does not move (not causally relevant) gets no control row:
every edit "succeeds" there and the verdict would say nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sae_bench.axes import interpretability as interp
from sae_bench.axes.supervised_codes import residual_precision, supervised_codes
from sae_bench.engine.context import EvalContext
from sae_bench.lrc.dictionary import experimental_attributes, lrc_fits
from sae_bench.lrc.records import ComparisonRow, LRCComparison
from sae_bench.models.nodes import Node
from sae_bench.results.document import UnitResult
from sae_bench.results.metrics import coverage_metric, info
from sae_bench.truth.reference import supervised_approximation, supervised_edit

LABELS = "lstsq"


def better(x: float | None, y: float | None, direction: str) -> bool | None:
    """Is x strictly better than y for a metric of this direction? None if undecidable."""
    if x is None or y is None:
        return None
    if direction == "higher":
        return x > y
    if direction == "lower":
        return x < y
    if direction == "one":
        return abs(x - 1) < abs(y - 1)
    return None


def row(unit: str, node: str | None, metric: str, sae: float | None, labels: float | None,
        lrc: float | None, experimental: bool) -> ComparisonRow:
    direction = info(metric).direction
    return ComparisonRow(unit=unit, node=node, metric=metric, sae=sae, labels=labels, lrc=lrc,
                         beats_labels=better(sae, labels, direction),
                         loses_to_lrc=better(lrc, sae, direction), experimental=experimental)


def _codes(ctx: EvalContext, node: Node, method: str) -> torch.Tensor:
    """The `method` dictionary read as an encoder on the eval prompts (the same memo key as the
    evaluation's, so a code computed there is reused)."""
    dictionary = ctx.dictionaries([node])[node][method]
    acts = ctx.eval_activations([node])[node]
    return ctx.memo(("supervised_codes", node, method), lambda: supervised_codes(
        dictionary, acts, residual_precision(dictionary, ctx.fit_activations([node])[node],
                                             ctx.fit_data.labels)))


def _f1_scores(ctx: EvalContext, codes: torch.Tensor) -> dict[str, float | None]:
    """Coverage per attribute and mean best F1 of `codes`, as `evaluate._interpretability`."""
    d = ctx.eval_data
    out: dict[str, float | None] = {}
    for attr, a in d.attributes.items():
        covered, n_present = interp.coverage(codes, a.labels, len(a.values),
                                             interp.INTERPRETABLE_F1)
        out[coverage_metric(attr)] = covered / n_present
    families = ctx.memo("properties", lambda: ctx.task.properties(d))
    it = interp.interpret(codes, families)
    alive = (codes > 0).any(0)
    out["mean_best_f1"] = float(it.f1[alive].mean()) if bool(alive.any()) else None
    return out


def lrc_comparison(ctx: EvalContext, units: Sequence, results: Sequence[UnitResult]
                   ) -> LRCComparison:
    """`units`: the evaluation units (`sae_bench.evaluate.pipeline.Unit`), `results` their results,
    evaluated with comparator "lrc"."""
    experimental = set(experimental_attributes(ctx.task.name, list(ctx.task.attributes)))
    rows: list[ComparisonRow] = []
    fits = []
    for unit, res in zip(units, results, strict=True):
        cs = unit.cross_section
        sup = supervised_approximation(ctx, cs)
        for metric in ("sufficiency", "necessity"):
            m = res.approximation.get(metric)
            rows.append(row(cs.name, None, metric, None if m is None else m.value,
                            getattr(sup[LABELS], metric), getattr(sup["lrc"], metric), False))
        for c in res.control_details:
            if not c.causally_relevant:
                continue
            edits = supervised_edit(ctx, cs, c.attribute)
            for metric in (f"aware_edit_accuracy_{c.attribute}",
                           f"edit_accuracy_{c.attribute}_k2"):
                rows.append(row(cs.name, None, metric, res.control[metric].value,
                                edits[LABELS], edits["lrc"], c.attribute in experimental))
        for node, node_res in zip(cs.nodes, res.per_node, strict=True):
            labels = _f1_scores(ctx, _codes(ctx, node, LABELS))
            for metric, value in labels.items():
                m = node_res.interpretability[metric]
                attr = metric.removeprefix("coverage_") if metric.startswith("coverage_") else None
                rows.append(row(cs.name, node.name, metric, m.value, value, m.supervised,
                                attr in experimental))
        fits += [record for _, record in lrc_fits(ctx, cs.nodes).values()]
    between = [f"{r.unit}{'/' + r.node if r.node and r.node != r.unit else ''}: {r.metric}"
               for r in rows if r.beats_labels and r.loses_to_lrc]
    return LRCComparison(labels_method=LABELS, fits=fits, rows=rows, between=between)
