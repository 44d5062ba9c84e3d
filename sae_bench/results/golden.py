"""Golden result files: score regressions for shipped SAEs, with a tolerance and reason per metric.

A golden file holds every scalar metric of a result document (SAE value and supervised value),
flattened to `unit/<unit>/<category>/<metric>` or `node/<node>/<category>/<metric>` keys.
`compare` lists every metric that drifted beyond its tolerance, readably. Golden files carry the
task version in their folder name: when a metric's maths changes, bump the task version and
refresh deliberately (`python -m sae_bench.cli.golden_refresh --refresh`). This module only reads
and compares; the `sae-bench golden` command is in `sae_bench.cli.reporting`.
"""

from __future__ import annotations

from pathlib import Path

from sae_bench.results.document import EvaluationResult

GOLDEN_SCHEMA = "1.0"
# Prompt counts the goldens are computed with: small enough for the test suite, large enough that
# every name has fit prompts.
N_FIT, N_EVAL, SEED = 4000, 1000, 0

# (key substring, absolute tolerance, reason); first match wins.
TOLERANCES = (
    ("edit_accuracy", 2.5e-3, "a share of 1,000 prompts: allow two prompts whose top-1 token "
                              "flips under a different BLAS summation order"),
    ("aware_edit_accuracy", 2.5e-3, "as edit_accuracy"),
    # Measured: batchtopk-k4-text's weight_removed_Pos_k4 reads 0.313975 on one CPU and
    # 0.314096 on another (same code, same settings), a 1.2e-4 gap.
    ("weight_removed", 2.5e-3, "a mean over 1,000 prompts of the weight the chosen latents "
                               "carry: allow two prompts whose near-tied latent choice flips "
                               "under a different BLAS summation order"),
    ("min_budget", 0.0, "an integer budget; any change is a behaviour change"),
    ("coverage", 0.0, "a count of values over a fixed threshold"),
    ("occluded", 0.0, "a flag"),
    ("oversplit", 0.0, "a flag"),
    ("split_latents", 0.0, "a count"),
    ("", 1e-4, "float32 sums over thousands of prompts; order-of-summation noise is ~1e-6"),
)


def tolerance(key: str) -> tuple[float, str]:
    for fragment, tol, reason in TOLERANCES:
        if fragment in key:
            return tol, reason
    raise AssertionError("the last TOLERANCES entry matches everything")


def flatten(doc: EvaluationResult) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for unit in doc.units:
        for cat in ("approximation", "interpretability", "control"):
            for name, m in getattr(unit, cat).items():
                out[f"unit/{unit.name}/{cat}/{name}"] = m.value
                out[f"unit/{unit.name}/{cat}/{name}/supervised"] = m.supervised
        for node in unit.per_node:
            for cat in ("approximation", "interpretability", "occlusion", "oversplitting"):
                for name, m in getattr(node, cat).items():
                    out[f"node/{node.node}/{cat}/{name}"] = m.value
                    out[f"node/{node.node}/{cat}/{name}/supervised"] = m.supervised
    return out


def golden_document(doc: EvaluationResult) -> dict:
    p = doc.provenance
    metrics = {}
    for key, value in sorted(flatten(doc).items()):
        tol, reason = tolerance(key)
        metrics[key] = {"value": value, "tolerance": tol, "reason": reason}
    return {"golden_schema": GOLDEN_SCHEMA, "task": p.task, "task_version": p.task_version,
            "model": p.model, "seed": p.seed, "n_fit": p.n_fit, "n_eval": p.n_eval,
            "metrics": metrics}


def compare(golden: dict, doc: EvaluationResult) -> list[str]:
    """Human-readable lines, one per drifted, missing or new metric (empty: no drift)."""
    now = flatten(doc)
    lines = []
    for key, g in golden["metrics"].items():
        if key not in now:
            lines.append(f"{key}: in the golden file, missing now")
            continue
        was, got = g["value"], now[key]
        if (was is None) != (got is None):
            lines.append(f"{key}: was {was}, now {got}")
        elif was is not None and abs(got - was) > g["tolerance"]:
            lines.append(f"{key}: was {was:.6g}, now {got:.6g} (|diff| {abs(got - was):.3g} > "
                         f"tolerance {g['tolerance']:g}: {g['reason']})")
    lines += [f"{key}: new metric, not in the golden file" for key in sorted(set(now) -
                                                                            set(golden["metrics"]))]
    return lines


def read_golden(path: Path) -> dict:
    """A golden file, checked enough that `compare` cannot fail on its shape."""
    from sae_bench.errors import UserError
    from sae_bench.sae.files import read_json

    golden = read_json(path, "golden file")
    metrics = golden.get("metrics")
    if golden.get("golden_schema") != GOLDEN_SCHEMA or not isinstance(metrics, dict) or not all(
        isinstance(m, dict) and {"value", "tolerance"} <= set(m) and _number(m["tolerance"])
        and (m["value"] is None or _number(m["value"])) for m in metrics.values()
    ):
        raise UserError(f"{path} is not a schema {GOLDEN_SCHEMA} golden file (each metric needs "
                        "a numeric value or null, and a numeric tolerance); write one with "
                        "`sae-bench golden RESULTS --write FILE`.")
    return golden


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def setting_mismatch(golden: dict, doc: EvaluationResult) -> str | None:
    """Why a result cannot be compared with a golden file (other task version, model, seed or
    prompt counts), or None."""
    p = doc.provenance
    now = {"task": p.task, "task_version": p.task_version, "model": p.model, "seed": p.seed,
           "n_fit": p.n_fit, "n_eval": p.n_eval}
    differs = [f"{k} {golden.get(k)!r} vs {v!r}" for k, v in now.items() if golden.get(k) != v]
    return "; ".join(differs) or None
