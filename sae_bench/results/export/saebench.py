"""SAEBench-shaped result files from a `results.json` (``sae-bench export --format saebench``).

SAEBench (PyPI ``sae-bench``, import name also ``sae_bench``) validates each eval's output with
pydantic models derived from ``sae_bench.evals.base_eval_output.BaseEvalOutput``: fixed top-level
fields, ``eval_result_metrics`` as categories of *flat* metrics (no nested dicts), a list of
``eval_result_details``, and free-form ``eval_result_unstructured``. One of our result documents
holds several evaluation units (one per node for an SAE without a position, one per
cross-section for a bundle) and stores each metric as ``{value, supervised, reason}``; SAEBench
keeps one SAE × eval per file. So each unit becomes one file:

- ``eval_result_metrics``: the unit's categories (approximation, interpretability, control), each
  metric ``m`` as ``m`` and its supervised-dictionary value as ``m_supervised``. A unit with one
  node also carries that node's categories (fvu, l0, coverage_IO, occlusion, oversplitting), so
  the common single-SAE case reads like SAEBench's core eval.
- ``eval_result_details``: one flat entry per node (node, SAE sha256, every node metric).
- ``eval_result_unstructured``: control details, the causal sweep, top latents, occlusion and
  over-splitting evidence, the reason of every missing value, model scores, provenance, metric
  metadata, and the sha256 of the results.json it came from.
- ``eval_id`` (a UUID4) and ``datetime_epoch_millis`` are made here, at export time, so that
  results.json itself stays byte-identical for the same seed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from sae_bench.models.nodes import Node
from sae_bench.results.document import EvaluationResult, Metric, NodeResult, SAEInfo, UnitResult

FORMAT = "saebench"
NODE_CATEGORIES = ("approximation", "interpretability", "occlusion", "oversplitting")
UNIT_CATEGORIES = ("approximation", "interpretability", "control")
_SAELENS_ARCH = {"relu": "standard", "batchtopk": "jumprelu"}


def eval_type_id(task: str) -> str:
    return f"principled_{task}"


def flatten(category: dict[str, Metric]) -> dict[str, float | None]:
    """``{m: {value, supervised, reason}}`` -> ``{m: value, m_supervised: supervised}``."""
    out: dict[str, float | None] = {}
    for name, metric in category.items():
        out[name] = metric.value
        out[f"{name}_supervised"] = metric.supervised
    return out


def missing_reasons(prefix: str, categories: dict[str, dict[str, Metric]]) -> dict[str, str]:
    return {f"{prefix}{cat}.{name}": m.reason for cat, metrics in categories.items()
            for name, m in metrics.items() if m.reason is not None}


def _node_categories(node: NodeResult) -> dict[str, dict[str, Metric]]:
    return {cat: getattr(node, cat) for cat in NODE_CATEGORIES}


def sae_cfg(info: SAEInfo, model: str) -> dict[str, Any]:
    """The SAE's description in SAELens' cfg.json shape (what SAEBench's field asks for)."""
    node = Node.parse(info.node)
    cfg: dict[str, Any] = {
        "architecture": _SAELENS_ARCH.get(info.architecture, info.architecture),
        "d_in": info.d_in, "d_sae": info.d_sae, "dtype": "float32",
        "metadata": {"model_name": model, "hook_name": node.hook,
                     "hook_head_index": node.head, "sae_bench_position": node.position,
                     "source_format": info.format, "source_architecture": info.architecture,
                     "source": info.source, "sha256": info.sha256,
                     "input_scale": info.input_scale},
    }
    if info.k is not None:
        cfg["k"] = info.k
    return cfg


def _saelens_ids(infos: list[SAEInfo]) -> tuple[str | None, str | None]:
    """(release, id) when the SAE was loaded by name (``saelens:RELEASE/ID``)."""
    sources = {i.source for i in infos}
    if len(sources) == 1:
        (source,) = sources
        if source and source.startswith("saelens:") and "/" in source:
            release, sae_id = source[len("saelens:"):].split("/", 1)
            return release, sae_id
    return None, None


def unit_document(doc: EvaluationResult, unit: UnitResult, results_sha256: str,
                  *, eval_id: str, millis: int) -> dict[str, Any]:
    """One SAEBench-shaped document for one unit of `doc`."""
    p = doc.provenance
    infos = [s for s in doc.saes if s.node in unit.nodes]
    unit_cats = {cat: getattr(unit, cat) for cat in UNIT_CATEGORIES}
    metrics = {cat: flatten(values) for cat, values in unit_cats.items()}
    reasons = missing_reasons("", unit_cats)
    if len(unit.per_node) == 1:
        for cat, values in _node_categories(unit.per_node[0]).items():
            metrics.setdefault(cat, {}).update(flatten(values))
    details = []
    for node in unit.per_node:
        entry: dict[str, Any] = {"node": node.node, "sae_sha256": node.sae}
        for values in _node_categories(node).values():
            entry.update(flatten(values))
        details.append(entry)
        reasons.update(missing_reasons(f"{node.node}:", _node_categories(node)))
    release, sae_id = _saelens_ids(infos)
    cfgs = [sae_cfg(i, p.model) for i in infos]
    return {
        "eval_type_id": eval_type_id(p.task),
        "eval_config": {
            "task": p.task, "task_version": p.task_version, "model_name": p.model,
            "model_fingerprint": p.model_fingerprint, "seed": p.seed, "n_fit": p.n_fit,
            "n_eval": p.n_eval, "device": p.device, "dtype": p.dtype, "unit": unit.name,
            "nodes": list(unit.nodes), "attributes": list(unit.attributes),
            "package_version": p.package_version, "results_schema_version": doc.schema_version,
        },
        "eval_id": eval_id,
        "datetime_epoch_millis": millis,
        "eval_result_metrics": metrics,
        "eval_result_details": details,
        "sae_bench_commit_hash": p.git_commit or "unknown",
        "sae_lens_id": sae_id,
        "sae_lens_release_id": release,
        "sae_lens_version": None,  # SAELens did not run this evaluation
        "sae_cfg_dict": cfgs[0] if len(cfgs) == 1 else {"saes": cfgs},
        "eval_result_unstructured": {
            "control_details": [c.model_dump() for c in unit.control_details],
            "causal_sweep": [s.model_dump() for s in unit.causal_sweep],
            "top_latents": {n.node: [t.model_dump() for t in n.top_latents]
                            for n in unit.per_node},
            "occlusion_details": {n.node: [o.model_dump() for o in n.occlusion_details]
                                  for n in unit.per_node},
            "oversplitting_details": {n.node: [o.model_dump() for o in n.oversplitting_details]
                                      for n in unit.per_node},
            "missing_reasons": reasons,
            "model": doc.model.model_dump(),
            "provenance": p.model_dump(),
            "metric_info": {k: v.model_dump() for k, v in doc.metric_info.items()},
            "source_results_sha256": results_sha256,
        },
    }


def file_name(run_name: str, unit: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{run_name}__{unit}").strip("._")
    return f"{safe}_eval_results.json"


def export(doc: EvaluationResult, results_path: Path, out_dir: Path) -> list[Path]:
    """Write one SAEBench file per unit under ``out_dir/<eval_type_id>/``; the paths."""
    from sae_bench.fileio.atomic import write_text_atomic

    sha = hashlib.sha256(results_path.read_bytes()).hexdigest()
    run_name = results_path.parent.name or "run"
    folder = out_dir / eval_type_id(doc.provenance.task)
    written = []
    for unit in doc.units:
        body = unit_document(doc, unit, sha, eval_id=str(uuid.uuid4()),
                             millis=int(time.time() * 1000))
        path = folder / file_name(run_name, unit.name)
        write_text_atomic(path, json.dumps(body, indent=2) + "\n")
        written.append(path)
    return written
