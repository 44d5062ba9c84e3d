"""The leaderboard's Markdown page and CSV (see `report_tables` for what the tables hold)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from sae_bench.report.structure import Report, cell, id_cells, id_columns, reference_cells
from sae_bench.report.tables import AXES

INTRO = ("One section per (task, task version, model): results from different groups are never "
         "ranked together. No composite score: each axis is ranked by its own headline; `front` "
         "marks SAEs on the Pareto front of L0 against that headline (no other SAE is both "
         "sparser and better). How to read it: reports/README.md.")


def render_csv(reports: Sequence[Report]) -> str:
    """One CSV, every metric of every group with its supervised value and each axis's rank
    (ranks restart per group and unit: never compare them across)."""
    metrics = sorted({m for rep in reports for m in rep.group.meta})
    axes = [a.name for a in AXES]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "task_version", "model", "sae", "architecture", "training_data",
                "d_sae", "k", "unit", "comparator"] + [f"rank_{a}" for a in axes]
               + [f"pareto_l0_{a}" for a in axes]
               + [c for m in metrics for c in (m, f"{m}_supervised")])
    for rep in reports:
        g = rep.group
        ranks = {(t.axis, r.sae, r.unit): i
                 for t in rep.tables for r, i in zip(t.rows, t.ranks, strict=True)}
        first = rep.tables[0]
        for row in first.rows:
            cells = [g.key.task, g.key.task_version, g.key.model, row.sae, row.architecture,
                     row.training_data, row.d_sae, row.k, row.unit, row.comparator]
            cells += [str(ranks[(a, row.sae, row.unit)]) for a in axes]
            cells += [str((row.sae, row.unit) in t.front) for t in rep.tables]
            for m in metrics:
                cells += [_raw(row.values.get(m)), _raw(row.supervised.get(m))]
            w.writerow(cells)
    return buf.getvalue()


def _raw(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows] + [""]


def render_markdown(reports: Sequence[Report]) -> str:
    out = ["# SAE leaderboard", "", INTRO, ""]
    for rep in reports:
        out += [f"## {rep.group.key.title()}", "", units_line(rep), ""]
        out += [f"- {n}" for n in rep.not_relevant] + ([""] if rep.not_relevant else [])
        for t in rep.tables:
            out += [f"### {t.title}", "", t.ranking, ""]
            header = id_columns(t) + [c.name for c in t.columns]
            body = [id_cells(t, i, r) + [cell(t, r, c) for c in t.columns]
                    for r, i in zip(t.rows, t.ranks, strict=True)]
            refs = [reference_cells(t, f"*{label}*", unit) + [v.get(c.name, "") for c in t.columns]
                    for label, unit, v in t.references]
            out += _md_table(header, refs + body)
            out += [f"- {n}" for n in t.collapsed] + ([""] if t.collapsed else [])
        for title, header, rows in rep.details:
            out += [f"### {title}", ""] + (_md_table(header, rows) if rows else ["(none)", ""])
        out += ["### Plots", ""]
        for p in rep.plots:
            out += [f"![{p.title}]({p.file})", ""] + [f"- {n}" for n in p.notes] + [""]
        out += [f"- {n}" for n in rep.plot_notes] + ([""] if rep.plot_notes else [])
    return "\n".join(out)


def units_line(rep: Report) -> str:
    units = rep.group.units()
    if len(units) == 1:
        return f"Unit (nodes patched together): {units[0]}."
    return f"Units (nodes patched together), ranked separately: {', '.join(units)}."
