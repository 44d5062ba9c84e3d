"""Leaderboards from saved result documents (`results.json` of `sae-bench run`); no model loaded.

`write_leaderboard(paths, out_dir)` writes `leaderboard.md`, `leaderboard.csv`,
`leaderboard.html` (self-contained: plots embedded as base64 PNG data URIs) and the PNG plots.

Choices:
- One row per (SAE, unit). Per-node metrics (FVU, L0, coverage, ...) of a multi-node unit are
  the mean over its nodes; the supervised reference beside each value is aggregated the same way.
- Results are never ranked across different (task, task_version, model): each such group gets its
  own table (a heading in md/html, `task`/`task_version`/`model` columns and a per-group `rank`
  in the CSV) and its own plots.
- Primary ranking: `sufficiency`, direction read from the documents' `metric_info` ("one":
  closest to 1 first), ties broken by `fvu` (lower first), then by SAE name and unit.
- Deterministic: rows sorted as above, no timestamps, PNGs without "Software" metadata.
- All inputs are loaded and every output rendered in memory before anything is written, so a bad
  input raises `UserError` and leaves `out_dir` untouched; each file is replaced atomically.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sae_bench import report_plots
from sae_bench.errors import UserError
from sae_bench.io import write_bytes_atomic, write_text_atomic
from sae_bench.results import EvaluationResult, Metric, load_result

PRIMARY_METRIC = "sufficiency"
TIEBREAK_METRIC = "fvu"
EDIT_BUDGET = 2  # the headline edit accuracy: 2 latents edited per node
ATTRIBUTE_ORDER = ("IO", "S", "Pos")  # known attributes first, in the task's order


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


@dataclass
class Row:
    """One (SAE, unit) with its headline metrics and the supervised reference beside each."""

    group: GroupKey
    sae: str
    architecture: str
    d_sae: str
    k: str
    unit: str
    values: dict[str, float | None]
    supervised: dict[str, float | None]
    edit_curves: dict[str, dict[int, float]] = field(default_factory=dict)
    supervised_edit: dict[str, float] = field(default_factory=dict)
    occlusion: list[dict[str, str]] = field(default_factory=list)
    oversplitting: list[dict[str, str]] = field(default_factory=list)
    n_units_of_sae: int = 1


def headline_metrics(attributes: Sequence[str]) -> list[str]:
    """Column order of the leaderboard's metrics for these attributes."""
    names = ["sufficiency", "necessity", "fvu", "l0", "shrinkage"]
    names += [f"coverage_{a}" for a in attributes] + ["interpretable_fraction"]
    names += [f"edit_accuracy_{a}_k{EDIT_BUDGET}" for a in attributes]
    names += [f"min_budget_{a}" for a in attributes]
    return names


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


def _sae_name(path: Path) -> str:
    """The run directory's name for `<run>/results.json`, else the file's stem."""
    return path.parent.name if path.name == "results.json" and path.parent.name else path.stem


def _resolve(path: Path) -> Path:
    """Accept a run directory as shorthand for its results.json."""
    return path / "results.json" if path.is_dir() else path


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def _get(cat: dict[str, Metric], name: str) -> tuple[float | None, float | None]:
    m = cat.get(name)
    return (None, None) if m is None else (m.value, m.supervised)


def _rows_of(doc: EvaluationResult, sae: str) -> list[Row]:
    prov = doc.provenance
    group = GroupKey(prov.task, prov.task_version, prov.model)
    attributes = _attributes([doc])
    rows: list[Row] = []
    for unit in doc.units:
        infos = [s for s in doc.saes if s.node in unit.nodes] or list(doc.saes)
        values: dict[str, float | None] = {}
        sup: dict[str, float | None] = {}
        for name in headline_metrics(attributes):
            unit_cats = (unit.approximation, unit.interpretability, unit.control)
            found = [c for c in unit_cats if name in c]
            if found:
                values[name], sup[name] = _get(found[0], name)
                continue
            per = [_get({**n.approximation, **n.interpretability}, name) for n in unit.per_node]
            values[name] = _mean([v for v, _ in per])
            sup[name] = _mean([s for _, s in per])
        row = Row(
            group=group, sae=sae,
            architecture="/".join(sorted({s.architecture for s in infos})),
            d_sae="/".join(str(d) for d in sorted({s.d_sae for s in infos})),
            k="/".join(sorted({_fmt(s.k, integer=True) for s in infos})),
            unit=unit.name, values=values, supervised=sup,
        )
        for c in unit.control_details:
            row.edit_curves[c.attribute] = {int(b): a for b, a in c.edit_accuracy_by_budget.items()}
            row.supervised_edit[c.attribute] = c.supervised_edit_accuracy
        for n in unit.per_node:
            for o in n.occlusion_details:
                row.occlusion.append({
                    "sae": sae, "node": n.node, "attribute": o.attribute,
                    "coverage": _fmt(o.coverage), "causally_relevant": str(o.causally_relevant),
                    "decodability": _fmt(o.decodability), "occluded": str(o.occluded),
                    "occluded_by": o.occluded_by or "", "evidence": o.evidence})
            for s in n.oversplitting_details:
                row.oversplitting.append({
                    "sae": sae, "node": n.node, "attribute": s.attribute, "value": s.value,
                    "count": str(s.count), "best_single_recall": _fmt(s.best_single_recall),
                    "union_recall": _fmt(s.union_recall),
                    "mean_pairwise_jaccard": _fmt(s.mean_pairwise_jaccard), "split": str(s.split)})
        rows.append(row)
    for row in rows:
        row.n_units_of_sae = len(rows)
    return rows


def _attributes(docs: Sequence[EvaluationResult]) -> list[str]:
    found = {a for d in docs for u in d.units for a in u.attributes}
    return [a for a in ATTRIBUTE_ORDER if a in found] + sorted(found - set(ATTRIBUTE_ORDER))


def _fmt(x: float | None, integer: bool = False) -> str:
    """Three decimals (integer counts such as budgets and k without a fraction); None -> n/a."""
    if x is None:
        return "n/a"
    if integer and float(x).is_integer():
        return str(int(x))
    return f"{x:.3f}"


@dataclass
class _Group:
    key: GroupKey
    rows: list[Row]
    attributes: list[str]
    direction: str | None
    tiebreak_direction: str | None
    plots: dict[str, bytes] = field(default_factory=dict)


def load_groups(result_paths: Sequence[Path]) -> list[_Group]:
    """Load every document (UserError on the first bad one) and build ranked groups."""
    if not result_paths:
        raise UserError("no result files given; pass one or more results.json from "
                        "`sae-bench run` (or their run directories).")
    docs: list[tuple[str, str, EvaluationResult]] = []
    for p in result_paths:
        path = _resolve(Path(p))
        docs.append((_sae_name(path), str(path), load_result(path)))
    docs.sort(key=lambda t: (t[0], t[1]))  # deterministic whatever the argument order
    by_group: dict[GroupKey, list[tuple[str, EvaluationResult]]] = {}
    for name, _, doc in docs:
        prov = doc.provenance
        by_group.setdefault(GroupKey(prov.task, prov.task_version, prov.model), []).append(
            (name, doc))
    groups: list[_Group] = []
    for key in sorted(by_group, key=lambda g: (g.task, g.task_version, g.model)):
        members = by_group[key]
        rows: list[Row] = []
        used: dict[str, int] = {}
        for name, doc in members:
            # Two files with the same run name would be indistinguishable rows: number them.
            used[name] = used.get(name, 0) + 1
            rows += _rows_of(doc, name if used[name] == 1 else f"{name}#{used[name]}")
        mdocs = [d for _, d in members]
        direction = _direction(mdocs, PRIMARY_METRIC)
        tb = _direction(mdocs, TIEBREAK_METRIC)
        rows = rank(rows, PRIMARY_METRIC, direction, [(TIEBREAK_METRIC, tb)])
        groups.append(_Group(key, rows, _attributes(mdocs), direction, tb))
    return groups


def _direction(docs: Sequence[EvaluationResult], metric: str) -> str | None:
    """The direction documented in the results themselves (they carry their metric_info)."""
    for d in docs:
        if metric in d.metric_info:
            return d.metric_info[metric].direction
    return None


def _cell(row: Row, name: str) -> str:
    v, s = row.values.get(name), row.supervised.get(name)
    integer = name.startswith("min_budget_")
    return _fmt(v, integer) if s is None else f"{_fmt(v, integer)} (sup {_fmt(s, integer)})"


_ID_COLUMNS = ["rank", "sae", "architecture", "d_sae", "k", "unit"]


def _id_cells(i: int, row: Row) -> list[str]:
    return [str(i), row.sae, row.architecture, row.d_sae, row.k, row.unit]


def render_csv(groups: Sequence[_Group]) -> str:
    """One CSV, all groups, `rank` restarts per group (never compare ranks across groups)."""
    metrics = headline_metrics(_union_attributes(groups))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "task_version", "model", *_ID_COLUMNS]
               + [c for m in metrics for c in (m, f"{m}_supervised")])
    for g in groups:
        for i, row in enumerate(g.rows, 1):
            cells = [g.key.task, g.key.task_version, g.key.model, *_id_cells(i, row)]
            for m in metrics:
                cells += [_raw(row.values.get(m)), _raw(row.supervised.get(m))]
            w.writerow(cells)
    return buf.getvalue()


def _raw(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def _union_attributes(groups: Sequence[_Group]) -> list[str]:
    found = {a for g in groups for a in g.attributes}
    return [a for a in ATTRIBUTE_ORDER if a in found] + sorted(found - set(ATTRIBUTE_ORDER))


_OCC_COLS = ["sae", "node", "attribute", "coverage", "causally_relevant", "decodability",
             "occluded", "occluded_by", "evidence"]
_SPLIT_COLS = ["sae", "node", "attribute", "value", "count", "best_single_recall",
               "union_recall", "mean_pairwise_jaccard", "split"]


def _tables(g: _Group) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the leaderboard, occlusion and over-splitting tables."""
    metrics = headline_metrics(g.attributes)
    main = [_id_cells(i, r) + [_cell(r, m) for m in metrics] for i, r in enumerate(g.rows, 1)]
    by_name = sorted(g.rows, key=lambda r: (r.sae, r.unit))
    occ = [[d[c] for c in _OCC_COLS] for r in by_name for d in r.occlusion]
    split = [[d[c] for c in _SPLIT_COLS] for r in by_name for d in r.oversplitting]
    return [("Leaderboard", _ID_COLUMNS + metrics, main),
            ("Occlusion", _OCC_COLS, occ),
            ("Over-splitting", _SPLIT_COLS, split)]


def _ranking_note(g: _Group) -> str:
    return (f"Ranked by `{PRIMARY_METRIC}` (direction: {g.direction}), ties by "
            f"`{TIEBREAK_METRIC}` (direction: {g.tiebreak_direction}). Values are SAE (sup "
            "supervised dictionary at the same nodes).")


def _plot_files(g: _Group) -> dict[str, str]:
    """Plot kind -> file name; the group slug keeps groups' plots apart."""
    s = g.key.slug()
    return {"l0_vs_sufficiency": f"l0_vs_sufficiency_{s}.png",
            "edit_accuracy": f"edit_accuracy_vs_budget_{s}.png",
            "coverage": f"coverage_{s}.png"}


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(groups: Sequence[_Group]) -> str:
    out = ["# SAE leaderboard", "",
           "One table per (task, task version, model): results from different groups are "
           "never ranked together.", ""]
    for g in groups:
        out += [f"## {g.key.title()}", "", _ranking_note(g), ""]
        for title, header, rows in _tables(g):
            out += [f"### {title}", ""]
            if not rows:
                out += ["(none)", ""]
                continue
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in rows]
            out.append("")
        out += ["### Plots", ""]
        out += [f"![{kind}]({name})" for kind, name in _plot_files(g).items()] + [""]
    return "\n".join(out)


def render_html(groups: Sequence[_Group]) -> str:
    """Self-contained HTML: no external CSS, scripts or images (PNGs inlined as data URIs)."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>SAE leaderboard</title>",
           "<style>table{border-collapse:collapse;font:12px sans-serif}"
           "td,th{border:1px solid #ccc;padding:2px 6px}th{background:#eee}</style>",
           "</head>", "<body>", "<h1>SAE leaderboard</h1>",
           "<p>One table per (task, task version, model): results from different groups are "
           "never ranked together.</p>"]
    for g in groups:
        out += [f"<h2>{e(g.key.title())}</h2>", f"<p>{e(_ranking_note(g))}</p>"]
        for title, header, rows in _tables(g):
            out.append(f"<h3>{e(title)}</h3>")
            if not rows:
                out.append("<p>(none)</p>")
                continue
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
            out.append("</table>")
        out.append("<h3>Plots</h3>")
        for kind in _plot_files(g):
            data = base64.b64encode(g.plots[kind]).decode("ascii")
            out.append(f'<p><img src="data:image/png;base64,{data}" alt="{e(kind)}"></p>')
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def write_leaderboard(result_paths: list[Path], out_dir: Path) -> list[Path]:
    """Write the leaderboard of these result documents into `out_dir`; return the files written.

    Raises `UserError` (and writes nothing) when any input is missing, corrupt or of another
    schema version.
    """
    groups = load_groups(result_paths)
    # Render everything before the first write: a failure must not leave a partial report.
    for g in groups:
        g.plots = {
            "l0_vs_sufficiency": report_plots.l0_vs_sufficiency(g.rows),
            "edit_accuracy": report_plots.edit_accuracy_vs_budget(g.rows, g.attributes),
            "coverage": report_plots.coverage_bars(g.rows, g.attributes),
        }
    texts = {"leaderboard.md": render_markdown(groups), "leaderboard.csv": render_csv(groups),
             "leaderboard.html": render_html(groups)}
    out_dir = Path(out_dir)
    written: list[Path] = []
    for g in groups:
        for kind, name in _plot_files(g).items():
            write_bytes_atomic(out_dir / name, g.plots[kind])
            written.append(out_dir / name)
    for name, text in texts.items():
        write_text_atomic(out_dir / name, text)
        written.append(out_dir / name)
    return written


def run_leaderboard(result_paths: list[Path], out_dir: Path, *, quiet: bool = False) -> int:
    """CLI entry (`sae-bench leaderboard RESULTS... --out DIR`): write, list files, exit 0."""
    written = write_leaderboard(result_paths, out_dir)
    if not quiet:
        for p in written:
            print(f"wrote {p}")
    return 0
