"""The shape of a rendered report: columns, per-axis tables, plots, and the cell text that the
Markdown, CSV and HTML writers share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sae_bench.report.rows import Group, MetricMeta, Row, _fmt


@dataclass(frozen=True)
class Column:
    name: str
    meta: MetricMeta
    derived: bool = False  # computed here from the metrics beside it (a headline), not stored

    @property
    def integer(self) -> bool:
        return _is_budget(self.name)


def _is_budget(name: str) -> bool:
    return name.startswith("min_budget_") or name == "budget_all_relevant"


def attribute_of(metric: str, attributes: Sequence[str]) -> str | None:
    """The attribute a per-attribute metric is about (`edit_accuracy_IO_k2` -> IO), or None."""
    tokens = metric.split("_")
    return next((a for a in attributes if a in tokens), None)


# What a table shows, instead of a number, for a metric about an attribute the model ignores
# where the row was scored: the edit is a no-op the model already agrees with, the decoding is
# of something unused, so the number would read as a score it is not (leaderboard.csv keeps it).
IDLE = "not relevant"


def idle(row: Row, name: str) -> bool:
    """Whether metric `name` is about an attribute the row's results mark not causally relevant
    at the row's unit."""
    attribute = attribute_of(name, list(row.relevant))
    return attribute is not None and not row.relevant[attribute]


def display(row: Row, name: str, value: float | None) -> str:
    if idle(row, name):
        return IDLE
    if value is None and _is_budget(name) and row.edit_curves:
        # A budget that no tried k reaches is "more than the largest", not unknown.
        return f">{max(max(c) for c in row.edit_curves.values() if c)}"
    return _fmt(value, _is_budget(name))


@dataclass
class Plot:
    """One PNG of a report: file name, what it shows and what was left out of it."""

    file: str
    kind: str
    title: str
    notes: list[str]
    png: bytes


@dataclass
class AxisTable:
    axis: str
    title: str
    ranking: str  # how rows are ordered, in words
    columns: list[Column]
    rows: list[Row]  # ranked best first within each unit
    ranks: list[int]
    front: set[tuple[str, str]]  # (sae, unit) on the Pareto front of (L0, headline)
    derived: dict[tuple[str, str], dict[str, float | None]]
    references: list[tuple[str, str, dict[str, str]]]  # (label, unit, column -> cell)
    collapsed: list[str]
    headline_metrics: list[str]  # what the Pareto plot draws against L0
    headline_left_out: list[str] = field(default_factory=list)  # collapsed, so not drawn
    multi_unit: bool = False

    def value(self, row: Row, col: Column) -> float | None:
        if col.derived:
            return self.derived[(row.sae, row.unit)].get(col.name)
        if idle(row, col.name):
            return None  # ranks with the missing values, shown as `IDLE`
        return row.values.get(col.name)


@dataclass
class Report:
    group: Group
    relevant: list[str]
    not_relevant: list[str]  # notes: why an attribute is left out of tables and plots
    tables: list[AxisTable]
    details: list[tuple[str, list[str], list[list[str]]]]
    plots: list[Plot] = field(default_factory=list)
    plot_notes: list[str] = field(default_factory=list)  # plots not drawn, and why


def cell(table: AxisTable, row: Row, col: Column) -> str:
    return display(row, col.name, table.value(row, col))


def id_columns(table: AxisTable) -> list[str]:
    """Identity columns; `unit` only when the group has several (else it is in the heading)."""
    return ["rank", "front", "sae", "architecture", "data"] + (["unit"] if table.multi_unit
                                                                else [])


def id_cells(table: AxisTable, i: int, row: Row) -> list[str]:
    on = "yes" if (row.sae, row.unit) in table.front else ""
    return [str(i), on, row.sae, row.architecture, row.training_data] + (
        [row.unit] if table.multi_unit else [])


def reference_cells(table: AxisTable, label: str, unit: str) -> list[str]:
    return ["", "", label, "", ""] + ([unit] if table.multi_unit else [])

