"""Plain-text lines for LRC fits and comparisons (reference and run summaries)."""

from __future__ import annotations

from collections.abc import Sequence

from sae_bench.lrc.records import LRCComparison, LRCFit


def render_lrc_fits(fits: Sequence[LRCFit]) -> list[str]:
    lines = ["lrc: concepts pulled back from the final residual stream at END through the mean "
             "Jacobian at rank rho (chosen on held-out fit prompts: top-1 agreement of the "
             "reconstruction)"]
    for f in fits:
        best = next(p for p in f.sweep if p.rank == f.rank)
        lines.append(f"  {f.node:<34} rho {f.rank}/{f.max_rank}  agreement "
                     f"{best.agreement:.3f}  |dLD| {best.mean_abs_logit_diff_error:.3f}  "
                     f"({f.n_jacobian_prompts} Jacobian prompts)")
    experimental = sorted({a for f in fits for a in f.experimental_attributes})
    if experimental:
        lines.append(f"  experimental: the lrc concepts of {', '.join(experimental)} (the "
                     "downstream object is validated for the answer attribute only)")
    return lines


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def render_lrc_comparison(c: LRCComparison) -> list[str]:
    lines = [f"SAE vs label-based ({c.labels_method}) vs lrc dictionary, measured the same way "
             "('<' marks: SAE beats labels but loses to lrc; '~' experimental attribute)"]
    for r in c.rows:
        where = r.unit if r.node is None or r.node == r.unit else f"{r.unit}/{r.node}"
        mark = "<" if r.beats_labels and r.loses_to_lrc else " "
        lines.append(f" {mark}{'~' if r.experimental else ' '} {where:<34} {r.metric:<24} SAE "
                     f"{_fmt(r.sae):>6}  {c.labels_method} {_fmt(r.labels):>6}  lrc "
                     f"{_fmt(r.lrc):>6}")
    lines.append("between label-based and lrc: " + ("; ".join(c.between) or "nowhere"))
    return lines
