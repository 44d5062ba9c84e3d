"""Per-axis tables of a leaderboard group: ranking, Pareto fronts against L0, collapsed columns.

There is no single composite score: each axis is ranked by its own headline, best first
(`AXES`), and each table says how. The axes' headlines (docs: reports/README.md):
- control: the smallest budget k (latents per node) whose greedy edit reaches the supervised edit
  accuracy on *every* causally relevant attribute (an SAE is only as steerable as its hardest
  relevant attribute), then the mean edit accuracy at k = 2 over those attributes (each attribute
  weighs the same; the per-attribute values are the columns beside it);
- interpretability: the mean coverage over causally relevant attributes, then mean best F1;
- approximation: sufficiency (closest to 1), then necessity, then FVU.
Attributes are relevant where the documents' `control_details[].causally_relevant` says so:
where the model does not use an attribute at the node, editing or decoding it says nothing about
the SAE, so its columns are collapsed into a note, and so are columns equal for every SAE. The
headlines and plots of each unit count only the attributes relevant at that unit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sae_bench.report.rows import Group, MetricMeta, Row, _fmt, _mean, _sort_key
from sae_bench.report.structure import IDLE, AxisTable, Column, Report, attribute_of, display, idle

EDIT_BUDGET = 2  # the headline edit accuracy: 2 latents edited per node
_BUDGET = re.compile(r"_k(\d+)$")
# Column order inside an axis: the headline families first, anything new after, by name.
_PREFIX_ORDER = ("min_budget_", "edit_accuracy_", "aware_edit_accuracy_", "weight_removed_",
                 "coverage_", "interpretable_fraction", "mean_best_f1", "sufficiency",
                 "necessity", "logit_diff_recovered", "fvu", "l0", "dead_fraction", "shrinkage")


def relevance(group: Group) -> tuple[list[str], list[str]]:
    """Relevant attributes (relevant at some unit, or never tested) and notes for the others."""
    relevant, notes = [], []
    for a in group.attributes:
        flags = [r.relevant[a] for r in group.rows if a in r.relevant]
        if not flags or any(flags):
            relevant.append(a)
            continue
        agree = [r.no_edit[a] for r in group.rows if a in r.no_edit]
        changed = f"; its counterfactual patch changes the model's top-1 on at most " \
            f"{1 - min(agree):.3f} of prompts" if agree else ""
        notes.append(f"{a} is not causally relevant at these nodes (the results mark it so"
                     f"{changed}), so {a} edits and {a} decoding say nothing about the SAE: its "
                     "columns and plots are left out (they are in leaderboard.csv).")
    for a in relevant:
        units = [u for u in group.units()
                 if not relevant_at([r for r in group.rows if r.unit == u], [a])]
        if units:
            notes.append(f"{a} is not causally relevant at {', '.join(units)} (the results mark "
                         f"it so): there its cells read \"{IDLE}\" (edits and decoding of an "
                         f"attribute the model ignores; the numbers are in leaderboard.csv), and "
                         f"the headlines and plots leave it out.")
    return relevant, notes


def relevant_at(rows: Sequence[Row], relevant: Sequence[str]) -> list[str]:
    """Of the group's relevant attributes, those relevant where these rows were scored (or never
    tested there). A group can hold several units: an attribute the model uses at one node only
    (Pos before ioi-circuit's name movers, IO after them) must not enter the headlines, or the
    plots, of the other, where its edit is a no-op the model already agrees with."""
    return [a for a in relevant if any(r.relevant.get(a, True) for r in rows)]


def _order(name: str, attributes: Sequence[str]) -> tuple[int, int, str]:
    attr = attribute_of(name, attributes)
    a = attributes.index(attr) + 1 if attr else 0
    p = next((i for i, pre in enumerate(_PREFIX_ORDER) if name.startswith(pre)), len(_PREFIX_ORDER))
    return (a, p, name)


def _same(values: Sequence[float | None]) -> bool:
    rounded = {None if v is None else round(float(v), 9) for v in values}
    return len(values) > 1 and len(rounded) == 1


def _collapse_note(name: str, rows: Sequence[Row], shown: str) -> str:
    sups = {r.supervised.get(name) for r in rows}
    sup = f" (supervised {_fmt(sups.pop())})" if len(sups) == 1 and None not in sups else ""
    reasons = {r.reasons.get(name) for r in rows}
    why = f" ({reasons.pop()})" if len(reasons) == 1 and None not in reasons else ""
    return f"`{name}` is {shown} for every SAE{sup}{why}: collapsed, it ranks nothing."


def _select(group: Group, categories: Sequence[str], relevant: list[str]
            ) -> tuple[list[str], list[str]]:
    """The axis's metric columns, and notes on the ones collapsed."""
    shown, same = [], []
    for name, meta in group.meta.items():
        if meta.category not in categories:
            continue
        m = _BUDGET.search(name)
        if m and int(m.group(1)) != EDIT_BUDGET:
            continue  # other budgets: plots and CSV
        attr = attribute_of(name, group.attributes)
        if attr is not None and attr not in relevant:
            continue  # said once per attribute, in Report.not_relevant
        if _same([r.values.get(name) for r in group.rows]):
            same.append(name)
            continue
        shown.append(name)
    first = group.rows[0] if group.rows else None
    notes = [_collapse_note(n, group.rows, display(first, n, first.values.get(n)) if first else "")
             for n in sorted(same, key=lambda n: _order(n, group.attributes))]
    return sorted(shown, key=lambda n: _order(n, group.attributes)), notes


def _derived_control(row: Row, relevant: list[str]) -> dict[str, float | None]:
    budgets = [row.values.get(f"min_budget_{a}") for a in relevant]
    return {"budget_all_relevant":
            None if not budgets or None in budgets else max(b for b in budgets if b is not None),
            f"mean_edit_accuracy_k{EDIT_BUDGET}":
            _mean([row.values.get(f"edit_accuracy_{a}_k{EDIT_BUDGET}") for a in relevant])}


def _derived_interp(row: Row, relevant: list[str]) -> dict[str, float | None]:
    return {"mean_coverage": _mean([row.values.get(f"coverage_{a}") for a in relevant]),
            "mean_coverage05": _mean([row.values.get(f"coverage05_{a}") for a in relevant])}


_DERIVED_META = {
    "budget_all_relevant": MetricMeta(
        "control", "lower", "smallest budget k whose greedy edit reaches the supervised edit "
        "accuracy on every causally relevant attribute (the largest min_budget over them); "
        "n/a when some attribute never reaches it"),
    f"mean_edit_accuracy_k{EDIT_BUDGET}": MetricMeta(
        "control", "higher", f"mean over causally relevant attributes of the greedy edit "
        f"accuracy with {EDIT_BUDGET} latents per node"),
    "mean_coverage": MetricMeta(
        "interpretability", "higher", "mean over causally relevant attributes of coverage "
        "(share of the attribute's values with a latent at F1 >= 0.8)"),
    "mean_coverage05": MetricMeta(
        "interpretability", "higher", "mean over causally relevant attributes of coverage05 "
        "(share of the attribute's values with a latent at F1 >= 0.5): the same question at a "
        "looser threshold, which separates SAEs where no latent reaches 0.8"),
}


@dataclass(frozen=True)
class _Axis:
    name: str
    title: str
    categories: tuple[str, ...]  # metric categories (metric_info) whose columns it shows
    derive: Callable[[Row, list[str]], dict[str, float | None]] | None
    key: tuple[str, ...]  # ranking columns, in order; directions from the metric metadata
    headline: Callable[[list[str]], list[str]]


AXES = (
    _Axis("control", "Control: can the SAE steer the attributes the model uses?", ("control",),
          _derived_control, ("budget_all_relevant", f"mean_edit_accuracy_k{EDIT_BUDGET}"),
          lambda rel: [f"edit_accuracy_{a}_k{EDIT_BUDGET}" for a in rel]),
    _Axis("interpretability", "Interpretability: do latents match the attributes?",
          ("interpretability", "occlusion", "oversplitting"), _derived_interp,
          ("mean_coverage", "mean_coverage05", "mean_best_f1", "interpretable_fraction"),
          lambda rel: [f"coverage_{a}" for a in rel] + [f"coverage05_{a}" for a in rel]
          + ["mean_best_f1"]),
    _Axis("approximation", "Approximation: does the reconstruction do the model's job?",
          ("approximation",), None, ("sufficiency", "necessity", "fvu"),
          lambda rel: ["sufficiency", "necessity"]),
)


def _table(group: Group, axis: _Axis, relevant: list[str]) -> AxisTable:
    names, collapsed = _select(group, axis.categories, relevant)
    derived = {(r.sae, r.unit): axis.derive(r, relevant_at([r], relevant)) if axis.derive
               else {} for r in group.rows}
    cols: list[Column] = []
    every = {n: Column(n, _DERIVED_META[n], derived=True) for n in next(iter(derived.values()), {})}
    for n, col in every.items():
        vals = [d.get(n) for d in derived.values()]
        if _same(vals):
            shown = display(group.rows[0], n, vals[0])
            collapsed.insert(0, f"`{n}` is {shown} for every SAE: collapsed, the ranking "
                             "falls to the next key.")
        else:
            cols.append(col)
    if "l0" in group.meta and axis.name != "approximation":
        cols.append(Column("l0", group.meta["l0"]))  # fronts are against L0 in every table
    cols += [Column(n, group.meta[n]) for n in names]
    table = AxisTable(axis.name, axis.title, "", cols, [], [], set(), derived, [], collapsed, [],
                      multi_unit=len(group.units()) > 1)
    by_name = {n: Column(n, m) for n, m in group.meta.items()} | every
    key_cols = [by_name[k] for k in axis.key if k in by_name]
    table.ranking = "Ranked by " + ", then ".join(
        f"`{c.name}` ({c.meta.direction or 'no direction'})" for c in key_cols) + "."

    def key(row: Row) -> tuple:
        return tuple(_sort_key(table.value(row, c), c.meta.direction) for c in key_cols)

    for unit in group.units():
        urows = sorted((r for r in group.rows if r.unit == unit), key=lambda r: (key(r), r.sae))
        table.rows += urows
        table.ranks += list(range(1, len(urows) + 1))
        table.front |= pareto_front(urows, key)
        table.references += _references(table, urows, unit)
    visible = {c.name for c in cols}
    table.headline_metrics = [m for m in axis.headline(relevant) if m in visible]
    table.headline_left_out = [m for m in axis.headline(relevant)
                               if m not in visible and m in group.meta]
    return table


def pareto_front(rows: Sequence[Row], key: Callable[[Row], tuple]) -> set[tuple[str, str]]:
    """(sae, unit) of rows no other row beats: L0 no larger and key no worse, one strictly."""
    # A row with no headline value at all cannot claim a trade-off, however small its L0.
    pts: list[tuple[float, tuple, Row]] = []
    for r in rows:
        l0, k = r.values.get("l0"), key(r)
        if l0 is not None and any(p[0] == 0 for p in k):
            pts.append((l0, k, r))
    front = set()
    for l0, k, r in pts:
        beaten = any(l2 <= l0 and k2 <= k and (l2 < l0 or k2 < k) for l2, k2, _ in pts)
        if not beaten:
            front.add((r.sae, r.unit))
    return front


def _references(table: AxisTable, rows: list[Row], unit: str) -> list[tuple[str, str, dict]]:
    """Unranked comparison rows: the supervised dictionary (and, for control, no edit)."""
    sup: dict[str, str] = {}
    for c in table.columns:
        if c.derived:
            continue
        vals = {r.supervised.get(c.name) for r in rows if c.name in r.values}
        if len(vals) > 1:
            sup[c.name] = "differs per SAE (see leaderboard.csv)"
        elif vals:
            sup[c.name] = _fmt(vals.pop(), c.integer)  # n/a: the results carry no comparator
    # Name the dictionary the values come from: lstsq, mean and LRC give different references.
    comparators = sorted({r.comparator for r in rows})
    which = (comparators[0] if len(comparators) == 1
             else f"{' / '.join(comparators)}: differs per SAE, see leaderboard.csv")
    refs = [(f"supervised dictionary ({which})", unit, sup)]
    if table.axis == "control" and rows:
        edit = {c.name: _fmt(rows[0].no_edit[a]) for c in table.columns
                if (a := attribute_of(c.name, list(rows[0].no_edit))) is not None
                and "edit_accuracy" in c.name}
        refs.append(("no edit (agreement without intervention)", unit, edit))
        # issue 16: the same edits by methods that need no SAE, to read an SAE's accuracy
        # between them (the methods' other scores are in the results' control_baselines)
        for method, label in BASELINE_ROWS.items():
            accs = rows[0].baselines.get(method)
            if accs:
                refs.append((label, unit, {
                    c.name: _fmt(accs[a]) for c in table.columns
                    if (a := attribute_of(c.name, list(accs))) is not None
                    and "edit_accuracy" in c.name}))
    # Like the SAEs' cells: no reference number for an attribute the model ignores here.
    idle_here = [c.name for c in table.columns if rows and all(idle(r, c.name) for r in rows)]
    return [(label, u, {**cells, **{n: IDLE for n in idle_here if n in cells}})
            for label, u, cells in refs]


BASELINE_ROWS = {
    "diffmean": "DiffMean (scale chosen on fit prompts)",
    "steering": "steering vector (binary edits only)",
    "scaling": "activation scaling (binary edits only)",
}


_OCC_COLS = ["sae", "node", "attribute", "coverage", "causally_relevant", "decodability",
             "occluded", "occluded_by", "evidence"]
_SPLIT_COLS = ["sae", "node", "attribute", "value", "count", "best_single_recall",
               "union_recall", "mean_pairwise_jaccard", "split"]


def build(group: Group) -> Report:
    relevant, notes = relevance(group)
    tables = [_table(group, axis, relevant) for axis in AXES]
    occ = [[d[c] for c in _OCC_COLS] for r in group.rows for d in r.occlusion]
    split = [[d[c] for c in _SPLIT_COLS] for r in group.rows for d in r.oversplitting]
    details = [("Occlusion (diagnostic, per node)", _OCC_COLS, occ),
               ("Over-splitting (diagnostic, per node)", _SPLIT_COLS, split)]
    return Report(group, relevant, notes, tables, details)


