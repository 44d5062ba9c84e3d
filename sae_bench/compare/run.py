"""`compare`: two dictionaries at one node, from activations to the result document.

Steps: eval-prompt activations at the node → each side's latents and directions (`sides`) →
best matches and the 1-to-1 pairs (`matching`) → geometry of the paired directions with its
nulls (`geometry`) → warnings → `CorrespondenceResult`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sae_bench.compare.geometry import GeometryOutcome, geometry, unit_rows
from sae_bench.compare.matching import Matching, chance_mean_max_correlation, match
from sae_bench.compare.permutation import stream_generator
from sae_bench.compare.result import (
    CorrespondenceResult,
    FeatureMatch,
    GeometryScore,
    Histogram,
    MatchingSummary,
)
from sae_bench.compare.sides import Side, SideSpec, sae_side, supervised_side
from sae_bench.compare.svcca import VARIANCE_KEPT
from sae_bench.engine import collect
from sae_bench.engine.context import EvalContext
from sae_bench.models.nodes import Node
from sae_bench.results.provenance import Provenance

# Streams of the command's seed (geometry uses 0..2, one per statistic).
RANDOM_DECODER_STREAM = 3
CHANCE_STREAM = 4
# A mean best correlation this high with the prompts shuffled means the prompts are too few for
# the number of latents: a latent's best match is then partly noise (**choice**).
CHANCE_WARNING = 0.1
# SVCCA's permutation null averaging this much means the pairs are too few for the kept
# dimensions: any two random subspaces of that size already correlate (**choice**).
SVCCA_NULL_WARNING = 0.5
HISTOGRAM_EDGES = np.linspace(-1.0, 1.0, 41)


def node_activations(ctx: EvalContext, node: Node) -> Tensor:
    """[n_eval, width] clean activations at `node` (no patched run is needed here)."""
    def compute():
        d = ctx.eval_data
        with ctx.progress.step(f"eval activations at {node.name}"):
            return collect.node_activations(ctx.model, d.tokens, d.positions, [node],
                                            batch_size=ctx.batch_size)[node]
    return ctx.memo(("compare_activations", node), compute)


def build_side(ctx: EvalContext, spec: SideSpec, node: Node) -> Side:
    if spec.sae is not None:
        return sae_side(spec, spec.sae, node_activations(ctx, node))
    assert spec.method is not None
    dictionary = ctx.dictionaries([node])[node][spec.method]
    return supervised_side(spec, dictionary, ctx.eval_data)


def _histogram(values: Tensor) -> Histogram:
    counts, _ = np.histogram(values.numpy(), bins=HISTOGRAM_EDGES)
    return Histogram(edges=[round(float(e), 6) for e in HISTOGRAM_EDGES],
                     counts=[int(c) for c in counts])


def summarise(m: Matching, chance: float) -> MatchingSummary:
    return MatchingSummary(
        mean_max_correlation=float(m.best_corr_a.mean()),
        mean_max_correlation_b_to_a=float(m.best_corr_b.mean()),
        chance_mean_max_correlation=chance,
        n_pairs_one_to_one=len(m.pair_corr),
        mean_max_correlation_one_to_one=float(m.pair_corr.mean()),
        many_to_one=m.many_to_one,
        max_fan_in=int(m.fan_in_b.max()),
        unmatched_b=len(m.unmatched_b),
        one_to_many=m.one_to_many,
        unmatched_a=len(m.unmatched_a),
        best_correlation_histogram=_histogram(m.best_corr_a),
        one_to_one_histogram=_histogram(m.pair_corr),
    )


def feature_matches(m: Matching, a: Side, b: Side) -> list[FeatureMatch]:
    """One entry per alive supervised feature, on whichever side is supervised."""
    views = (("a", a, m.alive_a, m.fan_in_a, m.best_b, m.best_corr_a, m.pairs_a),
             ("b", b, m.alive_b, m.fan_in_b, m.best_a, m.best_corr_b, m.pairs_b))
    out = []
    for label, side, alive, fan_in, best, corr, kept in views:
        if side.info.kind != "supervised":
            continue
        kept_set = set(kept.tolist())
        out += [FeatureMatch(side=label, feature=side.names[j],  # type: ignore[arg-type]
                             n_best_matching=int(fan_in[k]), best_latent=int(best[k]),
                             best_correlation=float(corr[k]), kept_pair=j in kept_set)
                for k, j in enumerate(alive.tolist())]
    return out


def _score(g: GeometryOutcome, m: int) -> GeometryScore:
    reason = None
    if g.test.value is None:
        reason = (f"{m} matched pairs: RSA needs at least 3" if g.name == "rsa"
                  else "a side's matched directions have no variance")
    k = g.components or (None, None)
    return GeometryScore(
        name=g.name,  # type: ignore[arg-type]
        value=g.test.value, reason=reason, p_value=g.test.p_value, null_mean=g.test.null_mean,
        null_q95=g.test.null_q95, n_permutations=g.test.n_permutations,
        random_subset_mean=g.subsets.mean, random_subset_sd=g.subsets.sd,
        n_subsets=g.subsets.n_draws, random_decoder=g.random_decoder.value,
        random_decoder_p_value=g.random_decoder.p_value,
        random_decoder_null_mean=g.random_decoder.null_mean, components_a=k[0], components_b=k[1],
        random_decoder_components=(None if g.random_decoder_components is None
                                   else list(g.random_decoder_components)),
    )


def warnings_for(summary: MatchingSummary, scores: list[GeometryScore], n_eval: int,
                 a: Side, b: Side) -> list[str]:
    out = []
    if summary.chance_mean_max_correlation >= CHANCE_WARNING:
        out.append(
            f"too few prompts for the dimension: with {n_eval} eval prompts and "
            f"{a.info.n_alive} x {b.info.n_alive} alive latents, shuffled prompts already give a "
            f"mean best correlation of {summary.chance_mean_max_correlation:.3f} (>= "
            f"{CHANCE_WARNING}); pass a larger --n-eval")
    for s in scores:
        if s.name == "svcca" and s.null_mean is not None and s.null_mean >= SVCCA_NULL_WARNING:
            out.append(
                f"too few pairs for the dimension: SVCCA keeps {s.components_a} and "
                f"{s.components_b} components of {summary.n_pairs_one_to_one} matched pairs, and "
                f"re-paired at random it already averages {s.null_mean:.3f} (>= "
                f"{SVCCA_NULL_WARNING}); read it against that null, or rely on cosine and RSA")
    return out


def compare(ctx: EvalContext, node: Node, spec_a: SideSpec, spec_b: SideSpec,
            provenance: Provenance, *, n_permutations: int, n_subsets: int
            ) -> CorrespondenceResult:
    a, b = build_side(ctx, spec_a, node), build_side(ctx, spec_b, node)
    with ctx.progress.step("matching latents by activation correlation"):
        m = match(a.activations, b.activations)
        chance = chance_mean_max_correlation(a.activations, b.activations,
                                             stream_generator(ctx.seed, CHANCE_STREAM))
    # The SAE side gets the random decoder (A when both are SAEs or both supervised).
    randomize = "b" if a.info.kind == "supervised" and b.info.kind == "sae" else "a"
    n_pairs, width = len(m.pair_corr), a.directions.shape[1]
    random = torch.randn(n_pairs, width, dtype=torch.float64,
                         generator=stream_generator(ctx.seed, RANDOM_DECODER_STREAM))
    with ctx.progress.step(f"geometry of {n_pairs} matched pairs ({n_permutations} "
                           f"permutations, {n_subsets} random subsets)"):
        outcomes = geometry(
            unit_rows(a.directions[m.pairs_a]), unit_rows(b.directions[m.pairs_b]),
            unit_rows(a.directions[m.order_a()]), unit_rows(b.directions[m.order_b()]),
            random, randomize, n_permutations=n_permutations, n_subsets=n_subsets,
            seed=ctx.seed)
    summary = summarise(m, chance)
    scores = [_score(g, n_pairs) for g in outcomes]
    return CorrespondenceResult(
        provenance=provenance, node=node.name, a=a.info, b=b.info,
        random_decoder_side=randomize,  # type: ignore[arg-type]
        n_eval=len(ctx.eval_data), variance_kept=VARIANCE_KEPT,
        warnings=warnings_for(summary, scores, len(ctx.eval_data), a, b),
        matching=summary, features=feature_matches(m, a, b), geometry=scores,
    )
