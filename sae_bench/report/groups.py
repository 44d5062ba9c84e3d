"""Result documents -> leaderboard groups: one `Row` per (SAE, unit), per-node metrics averaged
over a unit's nodes, metric meanings from the documents, run-wide provenance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sae_bench.errors import UserError
from sae_bench.report.rows import (
    Group,
    GroupKey,
    MetricMeta,
    Row,
    _fmt,
    _mean,
    attribute_order,
    training_data,
)
from sae_bench.results import metrics as metric_registry
from sae_bench.results.document import EvaluationResult, Metric, load_result


def _sae_name(path: Path) -> str:
    """The run directory's name for `<run>/results.json`, else the file's stem."""
    return path.parent.name if path.name == "results.json" and path.parent.name else path.stem


def _resolve(path: Path) -> Path:
    """Accept a run directory as shorthand for its results.json."""
    return path / "results.json" if path.is_dir() else path


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
            group=group, sae=sae, training_data=training_data(sae), comparator=doc.comparator,
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

