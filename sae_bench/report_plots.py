"""Leaderboard plots, rendered to PNG bytes in memory (see `sae_bench.leaderboard`).

Determinism matters more than looks here: the same inputs must give byte-identical PNGs, so
every figure has a fixed size and dpi, and the "Software" metadata (which embeds the matplotlib
version) is dropped. Nothing is written to disk in this module; the caller writes atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

# Set the backend before pyplot is imported: reports are built headless (CI, servers).
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sae_bench.leaderboard import Row

FIGSIZE = (7.0, 4.5)
DPI = 100


def _png(fig: Figure) -> bytes:
    """PNG bytes of `fig` without run-dependent metadata, then close it (pyplot keeps refs)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    return buf.getvalue()


def _label(row: Row) -> str:
    return row.sae if row.n_units_of_sae == 1 else f"{row.sae} [{row.unit}]"


def l0_vs_sufficiency(rows: Sequence[Row]) -> bytes:
    """One point per (SAE, unit); the supervised dictionary as a star, sufficiency 1 as a line."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, row in enumerate(rows):
        l0, suff = row.values.get("l0"), row.values.get("sufficiency")
        if l0 is None or suff is None:
            continue  # a point without both coordinates cannot be placed
        ax.scatter([l0], [suff], color=f"C{i % 10}", label=_label(row), zorder=3)
    # The supervised reference differs per unit (nodes), so plot each distinct one once.
    seen: set[tuple[float, float]] = set()
    for row in rows:
        l0, suff = row.supervised.get("l0"), row.supervised.get("sufficiency")
        if l0 is None or suff is None or (l0, suff) in seen:
            continue
        seen.add((l0, suff))
        ax.scatter([l0], [suff], marker="*", s=180, color="black", zorder=4,
                   label="supervised" if len(seen) == 1 else None)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="sufficiency = 1")
    xs = [v for r in rows for v in (r.values.get("l0"), r.supervised.get("l0")) if v]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")  # L0 spans orders of magnitude between SAEs and the reference
    ax.set_xlabel("L0 (mean active latents per prompt)")
    ax.set_ylabel("sufficiency (1 is best)")
    ax.set_title("L0 vs sufficiency")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def edit_accuracy_vs_budget(rows: Sequence[Row], attributes: Sequence[str]) -> bytes:
    """Greedy edit accuracy by latent budget k, one panel per attribute, one line per row."""
    n = max(1, len(attributes))
    fig, axes = plt.subplots(1, n, figsize=(FIGSIZE[0] * max(1, n) / 2, FIGSIZE[1]),
                             squeeze=False, sharey=True)
    for ax, attr in zip(axes[0], attributes, strict=False):
        sup_seen: set[float] = set()
        for i, row in enumerate(rows):
            curve = row.edit_curves.get(attr)
            if not curve:
                continue
            ks = sorted(curve)
            ax.plot(ks, [curve[k] for k in ks], marker="o", color=f"C{i % 10}",
                    label=_label(row))
            sup = row.supervised_edit.get(attr)
            if sup is not None and sup not in sup_seen:
                sup_seen.add(sup)
                ax.axhline(sup, color="black", linestyle="--", linewidth=1,
                           label="supervised" if len(sup_seen) == 1 else None)
        ax.set_xscale("log", base=2)
        ax.set_title(attr)
        ax.set_xlabel("budget k (latents per node)")
        ax.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel("edit accuracy")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("Edit accuracy vs budget")
    fig.tight_layout()
    return _png(fig)


def coverage_bars(rows: Sequence[Row], attributes: Sequence[str]) -> bytes:
    """Grouped bars: per attribute, coverage (F1 >= 0.8) of each row, plus the supervised one."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    series: list[tuple[str, list[float]]] = []
    for row in rows:
        series.append((_label(row), [_nz(row.values.get(f"coverage_{a}")) for a in attributes]))
    if rows:
        sup = [_nz(rows[0].supervised.get(f"coverage_{a}")) for a in attributes]
        series.append(("supervised", sup))
    width = 0.8 / max(1, len(series))
    for j, (label, heights) in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(attributes))]
        color = "black" if label == "supervised" and j == len(series) - 1 else f"C{j % 10}"
        ax.bar(xs, heights, width=width, label=label, color=color)
    ax.set_xticks(range(len(attributes)), [f"coverage_{a}" for a in attributes])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of values with a latent at F1 >= 0.8")
    ax.set_title("F1 coverage per attribute")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def _nz(x: float | None) -> float:
    """Missing coverage drawn as a zero-height bar (the tables say 'n/a')."""
    return 0.0 if x is None or math.isnan(x) else x
