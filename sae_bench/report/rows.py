"""The plain data of a leaderboard: one `Row` per (SAE, unit), grouped per (task, task version,
model), with what each metric means; plus ranking and number formatting.

Tables, plots and the HTML page take these rows; nothing here reads a result document, so the
drawing code never depends on the result schema (`sae_bench.report.groups` builds the rows).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

ATTRIBUTE_ORDER = ("IO", "S", "Pos")  # known attributes first, in the task's order


# The training-data tag is not recorded in result documents or SAE files; the baselines name
# their runs `<arch>-<sparsity>-<data>`, so a name of three or more dash-separated parts gives it.
UNSPECIFIED_DATA = "unspecified"


@dataclass(frozen=True)
class GroupKey:
    """Results are comparable only within one task version on one model."""

    task: str
    task_version: str
    model: str

    def title(self) -> str:
        return f"task {self.task} v{self.task_version} on model {self.model}"

    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.task}-v{self.task_version}-{self.model}")


@dataclass(frozen=True)
class MetricMeta:
    """What a column means: read from the documents, so reports explain their own numbers."""

    category: str
    direction: str | None
    description: str


@dataclass
class Row:
    """One (SAE, unit): every metric with the supervised reference beside it, plus details."""

    group: GroupKey
    sae: str
    architecture: str
    d_sae: str
    k: str
    unit: str
    values: dict[str, float | None]
    supervised: dict[str, float | None]
    training_data: str = UNSPECIFIED_DATA
    # the supervised dictionary `supervised` comes from (the result's comparator)
    comparator: str = "lstsq"
    reasons: dict[str, str] = field(default_factory=dict)  # why a value is missing
    edit_curves: dict[str, dict[int, float]] = field(default_factory=dict)
    supervised_edit: dict[str, float] = field(default_factory=dict)
    no_edit: dict[str, float] = field(default_factory=dict)  # agreement without intervention
    relevant: dict[str, bool] = field(default_factory=dict)  # attribute -> causally relevant
    # control baselines at the unit (issue 16): method -> {attribute: edit accuracy}
    baselines: dict[str, dict[str, float | None]] = field(default_factory=dict)
    top_f1: dict[str, list[float]] = field(default_factory=dict)  # node -> stored latents' F1
    occlusion: list[dict[str, str]] = field(default_factory=list)
    oversplitting: list[dict[str, str]] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    n_units_of_sae: int = 1

    @property
    def label(self) -> str:
        return self.sae if self.n_units_of_sae == 1 else f"{self.sae} [{self.unit}]"


def _sort_key(value: float | None, direction: str | None) -> tuple[int, float]:
    """Best first; None (and NaN) last whatever the direction."""
    if value is None or value != value:
        return (1, 0.0)
    if direction == "one":
        return (0, abs(value - 1.0))
    if direction == "higher":
        return (0, -value)
    if direction == "lower":
        return (0, value)
    return (0, 0.0)  # "none"/None: no preferred order, keep the incoming (stable) order


def rank(rows: Sequence[Row], metric: str, direction: str | None,
         tiebreak: Sequence[tuple[str, str | None]] = ()) -> list[Row]:
    """Rows sorted best first by `metric`: "one" |x-1| ascending, "higher" descending, "lower"
    ascending; None values last. `tiebreak` (metric, direction) pairs decide ties, then SAE name
    and unit so the order never depends on input order."""
    def key(row: Row) -> tuple:
        parts = [_sort_key(row.values.get(metric), direction)]
        parts += [_sort_key(row.values.get(m), d) for m, d in tiebreak]
        return (*parts, row.sae, row.unit)

    return sorted(rows, key=key)


def training_data(sae: str) -> str:
    parts = sae.split("#")[0].split("-")
    return parts[-1] if len(parts) >= 3 and parts[-1] else UNSPECIFIED_DATA


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def _fmt(x: float | None, integer: bool = False) -> str:
    """Three decimals (integer counts such as budgets and k without a fraction); None -> n/a."""
    if x is None:
        return "n/a"
    if integer and float(x).is_integer():
        return str(int(x))
    return f"{x:.3f}"


def attribute_order(found: set[str]) -> list[str]:
    return [a for a in ATTRIBUTE_ORDER if a in found] + sorted(found - set(ATTRIBUTE_ORDER))


@dataclass
class Group:
    """The rows of one (task, version, model), with what their metrics mean."""

    key: GroupKey
    rows: list[Row]
    attributes: list[str]
    meta: dict[str, MetricMeta]
    environment: dict[str, str]
    plots: dict[str, bytes] = field(default_factory=dict)

    def units(self) -> list[str]:
        return sorted({r.unit for r in self.rows})

