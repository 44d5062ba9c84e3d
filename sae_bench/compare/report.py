"""The correspondence report: Markdown text and one PNG, from a saved result only (never a model).

The plot has two panels: the distribution of best correlations (every alive latent of A, and the
pairs the 1-to-1 filter keeps), and each geometry statistic beside its three references (the
permutation null's 95th percentile, the random-subset baseline ± sd, the random decoder).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from sae_bench.compare.result import CorrespondenceResult, GeometryScore
from sae_bench.report import style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOT_NAME = "correspondence.png"
LIST_AT_MOST = 12  # feature names listed per attribute; the JSON has all of them


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _geometry_row(s: GeometryScore) -> str:
    value = _f(s.value) if s.value is not None else f"n/a ({s.reason})"
    if s.name == "svcca" and s.components_a is not None:
        value += f" (k = {s.components_a}/{s.components_b})"
    subset = (f"{_f(s.random_subset_mean)} ± {_f(s.random_subset_sd)}"
              if s.random_subset_mean is not None else "n/a")
    random = (f"{_f(s.random_decoder)} (null mean {_f(s.random_decoder_null_mean)}, "
              f"p {_f(s.random_decoder_p_value, 4)}")
    if s.random_decoder_components is not None:
        random += f", k = {'/'.join(map(str, s.random_decoder_components))}"
    return (f"| {s.name} | {value} | {_f(s.p_value, 4)} | {_f(s.null_mean)} | "
            f"{_f(s.null_q95)} | {subset} | {random}) |")


def _feature_lines(doc: CorrespondenceResult) -> list[str]:
    by_attr: dict[tuple[str, str], list] = defaultdict(list)
    for f in doc.features:
        by_attr[(f.side, f.feature.split("=", 1)[0])].append(f)
    if not by_attr:
        return []
    lines = ["", "## Supervised features (attribute values)", "",
             "| side | attribute | alive features | best match of ≥ 1 latent | of ≥ 2 (split) | "
             "nobody's best match (occluded) |", "|---|---|---|---|---|---|"]
    notes = []
    for (side, attr), feats in by_attr.items():
        split = [f for f in feats if f.n_best_matching >= 2]
        none = [f for f in feats if f.n_best_matching == 0]
        lines.append(f"| {side} | {attr} | {len(feats)} | "
                     f"{sum(f.n_best_matching >= 1 for f in feats)} | {len(split)} | "
                     f"{len(none)} |")
        if split:
            top = sorted(split, key=lambda f: -f.n_best_matching)[:LIST_AT_MOST]
            notes.append(f"- {attr}, most split: " + ", ".join(
                f"{f.feature} ({f.n_best_matching} latents)" for f in top))
        if none:
            names = [f.feature.split("=", 1)[1] for f in none]
            more = f" and {len(names) - LIST_AT_MOST} more" if len(names) > LIST_AT_MOST else ""
            notes.append(f"- {attr}, nobody's best match: {', '.join(names[:LIST_AT_MOST])}{more}")
    return lines + [""] + notes


def render(doc: CorrespondenceResult) -> str:
    p, mt = doc.provenance, doc.matching
    other = "supervised feature" if doc.b.kind == "supervised" else "B latent"
    lines = [
        f"# Correspondence: {doc.a.spec} (A) vs {doc.b.spec} (B)",
        "",
        f"{p.model} on {p.task} v{p.task_version} at `{doc.node}`, seed {p.seed}, "
        f"{doc.n_eval} eval prompts; A: {doc.a.n_alive} of {doc.a.n_latents} latents alive, "
        f"B: {doc.b.n_alive} of {doc.b.n_latents}.",
        "",
        *(line for w in doc.warnings for line in (f"**Warning:** {w}", "")),
        "## Matching by activation correlation",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| mean max-correlation, A → B (chance, prompts shuffled) | "
        f"{_f(mt.mean_max_correlation)} ({_f(mt.chance_mean_max_correlation)}) |",
        f"| mean max-correlation, B → A | {_f(mt.mean_max_correlation_b_to_a)} |",
        f"| after the 1-to-1 filter ({mt.n_pairs_one_to_one} pairs) | "
        f"{_f(mt.mean_max_correlation_one_to_one)} |",
        f"| many-to-1: {other}s best-matched by ≥ 2 A latents (most: {mt.max_fan_in}) | "
        f"{mt.many_to_one} |",
        f"| {other}s that are nobody's best match | {mt.unmatched_b} |",
        f"| 1-to-many: A latents best-matched by ≥ 2 B latents | {mt.one_to_many} |",
        f"| A latents that are nobody's best match | {mt.unmatched_a} |",
        *_feature_lines(doc),
        "",
        f"## Geometry of the {mt.n_pairs_one_to_one} matched pairs (decoder directions)",
        "",
        f"p: permutation of the pairing; random decoder: side {doc.random_decoder_side.upper()}'s "
        "directions replaced by random ones, same pairs. SVCCA keeps the components explaining "
        f"{doc.variance_kept:.0%} of each side's variance (k = A/B).",
        "",
        "| statistic | value | p | null mean | null q95 | random subsets (mean ± sd) | "
        "random decoder (its own null) |",
        "|---|---|---|---|---|---|---|",
        *(_geometry_row(s) for s in doc.geometry),
        "",
        f"![correspondence]({PLOT_NAME})",
    ]
    return "\n".join(lines) + "\n"


def figure(doc: CorrespondenceResult) -> Figure:
    fig, (hist, geo) = style.figure(2, columns=2)
    edges = doc.matching.best_correlation_histogram.edges
    width = edges[1] - edges[0]
    for h, label, colour in ((doc.matching.best_correlation_histogram, "every alive A latent",
                              "#56B4E9"),
                             (doc.matching.one_to_one_histogram, "1-to-1 pairs", "#0072B2")):
        hist.bar(edges[:-1], h.counts, width=width, align="edge", color=colour, alpha=0.7,
                 label=label)
    hist.axvline(doc.matching.chance_mean_max_correlation, color="grey", linestyle=":",
                 label="chance (mean)")
    hist.set_xlabel("best correlation with the other side")
    hist.set_ylabel("latents")
    hist.legend(fontsize=7, frameon=False)
    xs = list(range(len(doc.geometry)))
    for x, s in zip(xs, doc.geometry, strict=True):
        if s.random_subset_mean is not None:
            geo.errorbar([x - 0.15], [s.random_subset_mean], yerr=[s.random_subset_sd or 0.0],
                         fmt="s", color="#E69F00", capsize=3,
                         label="random subsets ± sd" if x == 0 else None)
        if s.null_q95 is not None:
            geo.plot([x - 0.25, x + 0.25], [s.null_q95] * 2, color="grey", linestyle="--",
                     label="permutation null q95" if x == 0 else None)
        if s.random_decoder is not None:
            geo.scatter([x + 0.15], [s.random_decoder], marker="x", color="#D55E00",
                        label="random decoder" if x == 0 else None)
        if s.random_decoder_null_mean is not None:
            # SVCCA's null rises with the components kept, which a random decoder inflates:
            # its value is read against its own null, drawn beside it.
            geo.plot([x + 0.05, x + 0.25], [s.random_decoder_null_mean] * 2, color="#D55E00",
                     linestyle=":", label="random decoder's null mean" if x == 0 else None)
        if s.value is not None:
            geo.scatter([x], [s.value], marker="o", color="#0072B2", s=50, zorder=3,
                        label="matched pairs" if x == 0 else None)
    geo.set_xticks(xs, [s.name for s in doc.geometry])
    geo.set_ylabel("statistic")
    geo.axhline(0.0, color="black", linewidth=0.5)
    style.legend(fig, geo.get_legend_handles_labels()[0])
    style.title(fig, f"{doc.a.spec} vs {doc.b.spec} at {doc.node}")
    return fig


def plot_png(doc: CorrespondenceResult) -> bytes:
    return style.png(figure(doc))
