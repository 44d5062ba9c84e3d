"""Visual encoding shared by the leaderboard plots, chosen to stay readable with 100 SAEs.

One colour per architecture and one marker (hatch for bars) per training-data tag, never one
colour per SAE: the default 10-colour cycle repeats after ten SAEs, and a legend of 100 names
covers the data. Individual SAEs are named in the tables (and on Pareto-front points).
Legends sit outside the axes ("outside right" in a constrained layout, which shrinks the axes to
make room). Every figure has a fixed size and dpi, and PNGs drop the "Software" metadata (it
embeds the matplotlib version), so the same inputs give byte-identical files.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import matplotlib

# Set the backend before pyplot is imported: reports are built headless (CI, servers).
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
PANEL = (3.6, 3.2)  # inches per panel
LEGEND_WIDTH = 2.2  # inches added on the right for the legend column
KNOWN_ARCHITECTURES = ("relu", "gated", "topk", "batchtopk", "jumprelu")
# Colour-blind-safe (Okabe-Ito), then tab10 for architectures beyond these.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442",
            "#000000")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
SUPERVISED = {"color": "black", "marker": "*", "s": 160}


def _ordered(values: Iterable[str], known: Sequence[str]) -> list[str]:
    found = set(values)
    return [v for v in known if v in found] + sorted(found - set(known))


class Encoding:
    """architecture -> colour, training data -> marker/hatch, fixed for one report."""

    def __init__(self, architectures: Iterable[str], data: Iterable[str]) -> None:
        self.architectures = _ordered(architectures, KNOWN_ARCHITECTURES)
        self.data = _ordered(data, ("task", "text"))
        # Known architectures keep their colour across reports; others follow in sorted order.
        slots = {a: i for i, a in enumerate(KNOWN_ARCHITECTURES)}
        extra = [a for a in self.architectures if a not in slots]
        slots.update({a: len(KNOWN_ARCHITECTURES) + i for i, a in enumerate(extra)})
        self._colour = {a: _colour(slots[a]) for a in self.architectures}

    def colour(self, architecture: str) -> str:
        return self._colour[architecture]

    def marker(self, data: str) -> str:
        return _MARKERS[self.data.index(data) % len(_MARKERS)]

    def hatch(self, data: str) -> str:
        return _HATCHES[self.data.index(data) % len(_HATCHES)]

    def handles(self, *, bars: bool = False) -> list[Artist]:
        """Legend entries: one per architecture (colour), one per training data (marker)."""
        out: list[Artist] = [Patch(color=self.colour(a), label=f"arch: {a}")
                             for a in self.architectures]
        for d in self.data:
            if bars:
                out.append(Patch(facecolor="white", edgecolor="grey", hatch=self.hatch(d),
                                 label=f"data: {d}"))
            else:
                out.append(Line2D([], [], color="grey", marker=self.marker(d), linestyle="",
                                  label=f"data: {d}"))
        return out


def _colour(slot: int) -> str:
    if slot < len(_PALETTE):
        return _PALETTE[slot]
    return str(matplotlib.colormaps["tab10"](slot % 10))


def figure(n_panels: int, *, columns: int = 3, panel: tuple[float, float] = PANEL,
           ) -> tuple[Figure, list[Axes]]:
    """A constrained-layout grid of `n_panels` axes (unused grid cells removed)."""
    n = max(1, n_panels)
    cols = min(columns, n)
    rows = -(-n // cols)
    size = (max(panel[0] * cols, 5.0) + LEGEND_WIDTH, panel[1] * rows + 0.8)
    fig, grid = plt.subplots(rows, cols, figsize=size, squeeze=False, layout="constrained")
    axes = [ax for line in grid for ax in line]
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def legend(fig: Figure, handles: Sequence[Artist]) -> None:
    """One legend for the whole figure, outside every axes (right of the grid)."""
    fig.legend(handles=list(handles), loc="outside right upper", fontsize=7, frameon=False)


def title(fig: Figure, text: str, notes: Sequence[str] = ()) -> None:
    """Title plus notes of what the figure leaves out (the report repeats them)."""
    # ~13 characters of 8 pt text per inch of the axes' width (the legend column takes the rest)
    width = max(50, int((fig.get_figwidth() - LEGEND_WIDTH) * 13))
    lines = [text] + [w for n in notes for w in textwrap.wrap(n, width)]
    fig.suptitle("\n".join(lines), fontsize=8 if notes else 10)


def png(fig: Figure) -> bytes:
    """PNG bytes of `fig` without run-dependent metadata, then close it (pyplot keeps refs)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    return buf.getvalue()
