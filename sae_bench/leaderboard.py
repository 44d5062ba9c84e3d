"""Leaderboards from saved result documents (`results.json` of `sae-bench run`); no model loaded.

`write_leaderboard(paths, out_dir)` writes `leaderboard.md`, `leaderboard.csv`,
`leaderboard.html` (one self-contained interactive page) and the PNG plots.

This module turns documents into rows; `report_tables` ranks them per axis, `report_plots`
draws them, `report_html` builds the page. Choices:
- One row per (SAE, unit). Per-node metrics (FVU, L0, coverage, ...) of a multi-node unit are
  the mean over its nodes; the supervised reference is aggregated the same way.
- Every metric the documents carry is read generically (name, category, direction and
  description from the documents' `metric_info`, else `sae_bench.metrics.info`), so a new metric
  reaches the CSV and its axis table without a change here.
- Results are never ranked across different (task, task_version, model): each such group gets
  its own tables and plots.
- Deterministic: rows sorted by name before ranking, no timestamps, PNGs without "Software"
  metadata, so the same inputs give byte-identical files.
- All inputs are loaded and every output rendered in memory before anything is written, so a bad
  input raises `UserError` and leaves `out_dir` untouched; each file is replaced atomically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sae_bench import metrics as metric_registry
from sae_bench.errors import UserError
from sae_bench.io import write_bytes_atomic, write_text_atomic
from sae_bench.results import EvaluationResult, Metric, load_result

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


def _sae_name(path: Path) -> str:
    """The run directory's name for `<run>/results.json`, else the file's stem."""
    return path.parent.name if path.name == "results.json" and path.parent.name else path.stem


def _resolve(path: Path) -> Path:
    """Accept a run directory as shorthand for its results.json."""
    return path / "results.json" if path.is_dir() else path


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


def _unit_metrics(doc: EvaluationResult, unit_index: int) -> dict[str, list[Metric]]:
    """Every metric of a unit: cross-section ones as they are, per-node ones listed per node."""
    unit = doc.units[unit_index]
    found: dict[str, list[Metric]] = {}
    for cat in (unit.approximation, unit.interpretability, unit.control):
        for name, m in cat.items():
            found.setdefault(name, [m])
    unit_level = set(found)
    for node in unit.per_node:
        for cat in (node.approximation, node.interpretability, node.occlusion,
                    node.oversplitting):
            for name, m in cat.items():
                if name not in unit_level:
                    found.setdefault(name, []).append(m)
    return found


def _rows_of(doc: EvaluationResult, sae: str, source: str) -> list[Row]:
    prov = doc.provenance
    group = GroupKey(prov.task, prov.task_version, prov.model)
    rows: list[Row] = []
    for i, unit in enumerate(doc.units):
        infos = [s for s in doc.saes if s.node in unit.nodes] or list(doc.saes)
        row = Row(
            group=group, sae=sae, training_data=training_data(sae),
            architecture="/".join(sorted({s.architecture for s in infos})),
            d_sae="/".join(str(d) for d in sorted({s.d_sae for s in infos})),
            k="/".join(sorted({_fmt(s.k, integer=True) for s in infos})),
            unit=unit.name, values={}, supervised={},
        )
        for name, ms in sorted(_unit_metrics(doc, i).items()):
            row.values[name] = _mean([m.value for m in ms])
            row.supervised[name] = _mean([m.supervised for m in ms])
            reasons = sorted({m.reason for m in ms if m.reason})
            if reasons:
                row.reasons[name] = "; ".join(reasons)
        for c in unit.control_details:
            row.edit_curves[c.attribute] = {int(b): a for b, a in c.edit_accuracy_by_budget.items()}
            row.supervised_edit[c.attribute] = c.supervised_edit_accuracy
            row.no_edit[c.attribute] = c.no_intervention_agreement
            row.relevant[c.attribute] = c.causally_relevant
        for cb in doc.control_baselines:
            if cb.name == unit.name and cb.nodes == unit.nodes:
                for e in cb.edits:
                    for m in e.methods:
                        if m.applicable:
                            row.baselines.setdefault(m.method, {})[e.edit] = m.edit_accuracy
        for n in unit.per_node:
            row.top_f1[n.node] = [lat.f1 for lat in n.top_latents]
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
        row.provenance = {
            "result file": source, "git commit": prov.git_commit or "n/a",
            "package version": prov.package_version, "seed": str(prov.seed),
            "n_fit": str(prov.n_fit), "n_eval": str(prov.n_eval), "device": prov.device,
            "dtype": prov.dtype,
            "SAE files": "; ".join(f"{p} (sha256 {h[:12]})" for p, h in
                                   sorted(prov.sae_files.items())),
        }
        rows.append(row)
    for row in rows:
        row.n_units_of_sae = len(rows)
    return rows


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


def _meta(docs: Sequence[EvaluationResult], names: set[str]) -> dict[str, MetricMeta]:
    """The documents' own metric_info first (what the numbers meant when computed)."""
    out: dict[str, MetricMeta] = {}
    for name in sorted(names):
        info = next((d.metric_info[name] for d in docs if name in d.metric_info), None)
        if info is None:
            try:
                info = metric_registry.info(name)
            except KeyError:
                out[name] = MetricMeta("other", None, "")
                continue
        out[name] = MetricMeta(info.category, info.direction, info.description)
    return out


def _environment(docs: Sequence[EvaluationResult]) -> dict[str, str]:
    """Run-wide provenance, each field listing every distinct value the documents carry."""
    fields: dict[str, set[str]] = {}
    for d in docs:
        p = d.provenance
        for k, v in (("package version", p.package_version), ("git commit", p.git_commit or "n/a"),
                     ("model fingerprint", p.model_fingerprint), ("seed", str(p.seed)),
                     ("n_fit", str(p.n_fit)), ("n_eval", str(p.n_eval)),
                     ("device", p.device), ("dtype", p.dtype), ("python", p.python),
                     *((f"library {lib}", ver) for lib, ver in p.libraries.items()),
                     ("model accuracy", _fmt(d.model.accuracy)),
                     ("model mean logit diff", _fmt(d.model.mean_logit_diff))):
            fields.setdefault(k, set()).add(str(v))
    return {k: ", ".join(sorted(v)) for k, v in sorted(fields.items())}


def load_groups(result_paths: Sequence[Path]) -> list[Group]:
    """Load every document (UserError on the first bad one) and build the groups."""
    if not result_paths:
        raise UserError("no result files given; pass one or more results.json from "
                        "`sae-bench run` (or their run directories).")
    docs: list[tuple[str, str, EvaluationResult]] = []
    for p in result_paths:
        path = _resolve(Path(p))
        docs.append((_sae_name(path), str(path), load_result(path)))
    docs.sort(key=lambda t: (t[0], t[1]))  # deterministic whatever the argument order
    by_group: dict[GroupKey, list[tuple[str, str, EvaluationResult]]] = {}
    for name, source, doc in docs:
        prov = doc.provenance
        by_group.setdefault(GroupKey(prov.task, prov.task_version, prov.model), []).append(
            (name, source, doc))
    groups: list[Group] = []
    for key in sorted(by_group, key=lambda g: (g.task, g.task_version, g.model)):
        members = by_group[key]
        rows: list[Row] = []
        used: dict[str, int] = {}
        for name, source, doc in members:
            # Two files with the same run name would be indistinguishable rows: number them.
            used[name] = used.get(name, 0) + 1
            rows += _rows_of(doc, name if used[name] == 1 else f"{name}#{used[name]}", source)
        mdocs = [d for _, _, d in members]
        attrs = attribute_order({a for d in mdocs for u in d.units for a in u.attributes})
        meta = _meta(mdocs, {m for r in rows for m in r.values})
        groups.append(Group(key, sorted(rows, key=lambda r: (r.sae, r.unit)), attrs, meta,
                            _environment(mdocs)))
    return groups


def write_leaderboard(result_paths: list[Path], out_dir: Path) -> list[Path]:
    """Write the leaderboard of these result documents into `out_dir`; return the files written.

    Raises `UserError` (and writes nothing) when any input is missing, corrupt or of another
    schema version.
    """
    from sae_bench import report_html, report_plots, report_tables, report_text

    groups = load_groups(result_paths)
    # Render everything before the first write: a failure must not leave a partial report.
    reports = [report_tables.build(g) for g in groups]
    files: dict[str, bytes] = {}
    for rep in reports:
        for plot in report_plots.render_all(rep):
            files[plot.file] = plot.png
            rep.plots.append(plot)
    texts = {"leaderboard.md": report_text.render_markdown(reports),
             "leaderboard.csv": report_text.render_csv(reports),
             "leaderboard.html": report_html.render(reports)}
    out_dir = Path(out_dir)
    written: list[Path] = []
    for name in sorted(files):
        write_bytes_atomic(out_dir / name, files[name])
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
