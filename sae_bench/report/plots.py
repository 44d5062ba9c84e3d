"""Leaderboard plots: figures from plain rows, PNG bytes in memory (the caller writes them).

Per group (and per unit when a group has several):
- `pareto_l0`: each axis's headline against L0, with the Pareto front drawn;
- `edit_accuracy_vs_budget`: greedy edit accuracy against k, causally relevant attributes only;
- `weight_removed_vs_budget`: the paper's Fig. 4 analogue (share of the reconstruction the
  greedy edit removes at each k, against the supervised feature's), drawn when the results carry
  `weight_removed_{attribute}_k{k}` metrics;
- `f1_histogram`: per node, the F1 of the latents the results store (`top_latents`).
Figure builders return matplotlib Figures so tests can measure their layout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sae_bench.report import style
from sae_bench.report.rows import Row, _sort_key
from sae_bench.report.structure import Plot, Report, attribute_of
from sae_bench.report.tables import relevant_at

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sae_bench.report.rows import MetricMeta

_WEIGHT = re.compile(r"weight_removed_(\w+)_k(\d+)$")
F1_INTERPRETABLE = 0.8  # the interpretability axis's threshold, drawn on the histograms


def encoding(rows: Sequence[Row]) -> style.Encoding:
    return style.Encoding((r.architecture for r in rows), (r.training_data for r in rows))


def _front_xy(points: list[tuple[float, float]], direction: str | None
              ) -> list[tuple[float, float]]:
    """The Pareto front of (L0 lower, y best by direction), sorted by L0."""
    def bad(y: float) -> tuple[int, float]:
        return _sort_key(y, direction)

    front = [(x, y) for x, y in points
             if not any(x2 <= x and bad(y2) <= bad(y) and (x2 < x or bad(y2) < bad(y))
                        for x2, y2 in points)]
    return sorted(set(front))


LOG_RATIO = 20  # L0 on a log axis once it spans more than this factor


def _log_l0(ax: Axes, xs: Sequence[float]) -> None:
    if xs and min(xs) > 0 and max(xs) / min(xs) > LOG_RATIO:
        ax.set_xscale("log")  # L0 spans orders of magnitude between SAEs


MAX_NAMED = 5  # front points named on a panel; more names would cover each other


def _name_front(ax: Axes, rows: Sequence[Row], metric: str, front: list[tuple[float, float]],
                xs: Sequence[float]) -> None:
    """Name a few SAEs on the front (the trade-off worth reading), spread along it."""
    if not front or not xs:
        return
    step = max(1, -(-len(front) // MAX_NAMED))
    named = set(front[::step])
    lo, hi = min(xs), max(xs)
    log = lo > 0 and hi / lo > LOG_RATIO

    def frac(x: float) -> float:  # position across the panel, to keep labels inside it
        if hi == lo:
            return 0.0
        return (math.log(x / lo) / math.log(hi / lo)) if log else (x - lo) / (hi - lo)

    for r in rows:
        x, y = r.values.get("l0"), r.values.get(metric)
        if x is None or y is None or (x, y) not in named:
            continue
        right = frac(x) > 0.6
        named.discard((x, y))  # two SAEs at the same point: name one
        ax.annotate(r.label, (x, y), fontsize=5.5, xytext=(-3 if right else 3, 3),
                    textcoords="offset points", ha="right" if right else "left",
                    annotation_clip=True, clip_on=True)


def pareto_figure(rows: Sequence[Row], panels: Sequence[str], meta: dict[str, MetricMeta],
                  notes: Sequence[str] = (), axis_of: dict[str, str] | None = None) -> Figure:
    """One panel per headline metric: y against L0, one point per row, front as a step line."""
    enc = encoding(rows)
    fig, axes = style.figure(len(panels))
    for ax, metric in zip(axes, panels, strict=False):
        direction = meta[metric].direction if metric in meta else None
        pts: list[tuple[float, float]] = []
        for r in rows:
            x, y = r.values.get("l0"), r.values.get(metric)
            if x is None or y is None:
                continue
            pts.append((x, y))
            ax.scatter([x], [y], color=enc.colour(r.architecture),
                       marker=enc.marker(r.training_data), s=28, alpha=0.85, zorder=3,
                       edgecolors="white", linewidths=0.4)
        front = _front_xy(pts, direction)
        if front:
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="grey",
                    linewidth=1, zorder=2)
            _name_front(ax, rows, metric, front, [p[0] for p in pts])
        sup = sorted({(s.supervised.get("l0"), s.supervised.get(metric)) for s in rows
                      if s.supervised.get("l0") is not None
                      and s.supervised.get(metric) is not None})
        for sx, sy in sup:
            ax.scatter([sx], [sy], zorder=4, **style.SUPERVISED)  # type: ignore[arg-type]
        if direction == "one":
            ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        _log_l0(ax, [p[0] for p in pts] + [p[0] for p in sup if p[0]])
        ax.set_xlabel("L0 (active latents per prompt)")
        ax.set_ylabel(f"{metric} ({direction or 'no direction'})", fontsize=8)
        axis = (axis_of or {}).get(metric)
        ax.set_title(f"{axis}: {metric}" if axis else metric, fontsize=9)
    handles = enc.handles()
    handles += [Line2D([], [], color="grey", linewidth=1, label="Pareto front"),
                Line2D([], [], linestyle="", label="supervised dictionary", markersize=10,
                       color="black", marker="*")]
    style.legend(fig, handles)
    style.title(fig, "Headline of each axis against L0 (lower L0 = sparser)", notes)
    return fig


def edit_curves_figure(rows: Sequence[Row], attributes: Sequence[str],
                       notes: Sequence[str] = ()) -> Figure:
    """Greedy edit accuracy by budget k, one panel per attribute, one thin line per row."""
    enc = encoding(rows)
    fig, axes = style.figure(len(attributes))
    for ax, attr in zip(axes, attributes, strict=False):
        for r in rows:
            curve = r.edit_curves.get(attr)
            if not curve:
                continue
            ks = sorted(curve)
            ax.plot(ks, [curve[k] for k in ks], color=enc.colour(r.architecture),
                    marker=enc.marker(r.training_data), markersize=3.5, linewidth=0.9,
                    alpha=0.75)
        for values, line in (({r.supervised_edit[attr] for r in rows if attr in r.supervised_edit},
                              "--"),
                             ({r.no_edit[attr] for r in rows if attr in r.no_edit}, ":")):
            for v in sorted(values):
                ax.axhline(v, color="black", linestyle=line, linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_title(attr, fontsize=9)
        ax.set_xlabel("budget k (latents edited per node)")
        ax.set_ylabel("edit accuracy")
        ax.set_ylim(-0.03, 1.03)
    style.legend(fig, enc.handles() + [
        Line2D([], [], color="black", linestyle="--", label="supervised edit"),
        Line2D([], [], color="black", linestyle=":", label="no edit (agreement)")])
    style.title(fig, "Edit accuracy against budget", notes)
    return fig


def weight_curves(rows: Sequence[Row], attributes: Sequence[str]) -> dict[str, list[int]]:
    """Attribute -> budgets with a `weight_removed_{attr}_k{k}` metric in some row."""
    found: dict[str, set[int]] = {}
    for r in rows:
        for name in r.values:
            m = _WEIGHT.fullmatch(name)
            if m and m.group(1) in attributes:
                found.setdefault(m.group(1), set()).add(int(m.group(2)))
    return {a: sorted(found[a]) for a in attributes if a in found}


def weight_removed_figure(rows: Sequence[Row], curves: dict[str, list[int]],
                          notes: Sequence[str] = ()) -> Figure:
    """Paper Fig. 4 analogue: weight removed by the greedy edit at each k, one line per row;
    the supervised feature's weight (the metric's supervised value) as a black line."""
    enc = encoding(rows)
    fig, axes = style.figure(len(curves))
    for ax, (attr, ks) in zip(axes, curves.items(), strict=False):
        sup: dict[int, float] = {}
        for r in rows:
            pts = [(k, r.values.get(f"weight_removed_{attr}_k{k}")) for k in ks]
            xy = [(k, v) for k, v in pts if v is not None]
            if xy:
                ax.plot([p[0] for p in xy], [p[1] for p in xy], color=enc.colour(r.architecture),
                        marker=enc.marker(r.training_data), markersize=3.5, linewidth=0.9,
                        alpha=0.75)
            for k in ks:
                s = r.supervised.get(f"weight_removed_{attr}_k{k}")
                if s is not None:
                    sup.setdefault(k, s)
        if sup:
            ax.plot(sorted(sup), [sup[k] for k in sorted(sup)], color="black", linestyle="--",
                    linewidth=1.2)
        ax.set_xscale("log", base=2)
        ax.set_title(attr, fontsize=9)
        ax.set_xlabel("budget k (latents edited per node)")
        ax.set_ylabel("weight removed (share of reconstruction)")
    style.legend(fig, enc.handles() + [Line2D([], [], color="black", linestyle="--",
                                              label="supervised feature")])
    style.title(fig, "Weight removed by the greedy edit against budget (paper Fig. 4)", notes)
    return fig


def f1_histogram_figure(rows: Sequence[Row], notes: Sequence[str] = ()) -> Figure:
    """Per node, stacked histograms of stored latents' F1 by (architecture, training data)."""
    enc = encoding(rows)
    nodes = sorted({n for r in rows for n in r.top_f1})
    fig, axes = style.figure(len(nodes), columns=4)
    bins = [i / 20 for i in range(21)]
    for ax, node in zip(axes, nodes, strict=False):
        stacks, colours, hatches = [], [], []
        for a in enc.architectures:
            for d in enc.data:
                vals = [f for r in rows if r.architecture == a and r.training_data == d
                        for f in r.top_f1.get(node, [])]
                if vals:
                    stacks.append(vals)
                    colours.append(enc.colour(a))
                    hatches.append(enc.hatch(d))
        if stacks:
            _, _, patches = ax.hist(stacks, bins=bins, stacked=True, color=colours,
                                    edgecolor="white", linewidth=0.3)
            # hist returns one container per stack, but a bare container for a single stack.
            containers: list[Any] = list(patches) if len(stacks) > 1 else [patches]  # type: ignore[arg-type]
            for group, hatch in zip(containers, hatches, strict=True):
                for bar in group:
                    bar.set_hatch(hatch)
        ax.axvline(F1_INTERPRETABLE, color="black", linestyle="--", linewidth=1)
        ax.set_title(node, fontsize=8)
        ax.set_xlabel("F1 of the latent's best property")
        ax.set_ylabel("latents")
        ax.set_xlim(0, 1)
    style.legend(fig, enc.handles(bars=True) + [Patch(facecolor="white", edgecolor="black",
                                                      linestyle="--", label="F1 = 0.8")])
    style.title(fig, "F1 of stored latents per node", notes)
    return fig


def _slug(rep: Report, unit: str) -> str:
    base = rep.group.key.slug()
    if len(rep.group.units()) == 1:
        return base
    return f"{base}-{re.sub(r'[^A-Za-z0-9._-]+', '_', unit)}"


def render_all(rep: Report) -> list[Plot]:
    """Every plot of a report, as PNG bytes; notes on what was left out go to the report."""
    plots: list[Plot] = []
    for unit in rep.group.units():
        rows = [r for r in rep.group.rows if r.unit == unit]
        s = _slug(rep, unit)
        relevant = relevant_at(rows, rep.relevant)
        left_out = [a for a in rep.group.attributes if a not in relevant]
        panels = [m for t in rep.tables for m in t.headline_metrics
                  if attribute_of(m, rep.group.attributes) not in left_out]
        flat = [m for t in rep.tables for m in t.headline_left_out]
        notes = [f"Not drawn, equal for every SAE (see the tables' notes): {', '.join(flat)}."
                 ] if flat else []
        plots.append(Plot(f"pareto_l0_{s}.png", "pareto_l0", f"Headlines against L0 ({unit})",
                          notes, style.png(pareto_figure(
                              rows, panels, rep.group.meta, notes,
                              {m: t.axis for t in rep.tables for m in t.headline_metrics}))))
        notes = [f"Left out, not causally relevant at these nodes: {', '.join(left_out)}."
                 ] if left_out else []
        plots.append(Plot(f"edit_accuracy_vs_budget_{s}.png", "edit_accuracy",
                          f"Edit accuracy against budget ({unit})", notes,
                          style.png(edit_curves_figure(rows, relevant, notes))))
        curves = weight_curves(rows, relevant)
        if curves:
            plots.append(Plot(f"weight_removed_vs_budget_{s}.png", "weight_removed",
                              f"Weight removed against budget ({unit})", notes,
                              style.png(weight_removed_figure(rows, curves, notes))))
        else:
            rep.plot_notes.append(
                f"No weight-removed plot (paper Fig. 4) for {unit}: the results carry no "
                "`weight_removed_{attribute}_k{k}` metrics (only the aware edit's weight).")
        stored = max((len(v) for r in rows for v in r.top_f1.values()), default=0)
        if stored:
            notes = [f"Only the top {stored} latents per node are stored in the results "
                     "(top_latents), so this is their F1, not every latent's; the table's "
                     "mean_best_f1 covers all alive latents."]
            plots.append(Plot(f"f1_histogram_{s}.png", "f1_histogram",
                              f"F1 of stored latents per node ({unit})", notes,
                              style.png(f1_histogram_figure(rows, notes))))
        else:
            rep.plot_notes.append(f"No F1 histogram for {unit}: the results store no latents.")
    return plots
