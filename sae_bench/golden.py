"""Golden result files: score regressions for shipped SAEs, with a tolerance and reason per metric.

A golden file holds every scalar metric of a result document (SAE value and supervised value),
flattened to `unit/<unit>/<category>/<metric>` or `node/<node>/<category>/<metric>` keys.
`compare` lists every metric that drifted beyond its tolerance, readably. Golden files carry the
task version in their folder name: when a metric's maths changes, bump the task version and
refresh deliberately (`python -m sae_bench.golden --refresh`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sae_bench.results import EvaluationResult

GOLDEN_SCHEMA = "1.0"
# Prompt counts the goldens are computed with: small enough for the test suite, large enough that
# every name has fit prompts.
N_FIT, N_EVAL, SEED = 4000, 1000, 0

# (key substring, absolute tolerance, reason); first match wins.
TOLERANCES = (
    ("edit_accuracy", 2.5e-3, "a share of 1,000 prompts: allow two prompts whose top-1 token "
                              "flips under a different BLAS summation order"),
    ("aware_edit_accuracy", 2.5e-3, "as edit_accuracy"),
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


def cmd_golden(results: Path, write: Path | None, check: Path | None) -> int:
    """`sae-bench golden`: pin a result's scores (--write) or check a result against them."""
    from sae_bench.errors import UserError
    from sae_bench.io import write_text_atomic
    from sae_bench.outputs import check_output_file
    from sae_bench.results import load_result

    if write is not None:
        check_output_file(write, "--write", example="golden.json")
    doc = load_result(results)
    if write is not None:
        write_text_atomic(write, json.dumps(golden_document(doc), indent=2) + "\n")
        print(f"wrote {write} ({len(flatten(doc))} metrics)")
        return 0
    assert check is not None
    golden = read_golden(check)
    mismatch = setting_mismatch(golden, doc)
    if mismatch:
        raise UserError(f"{results} was not evaluated like {check} ({mismatch}); re-run with the "
                        "golden file's settings, or rewrite it deliberately with --write.")
    drift = compare(golden, doc)
    for line in drift:
        print(line)
    print(f"{len(drift)} metric(s) drifted from {check}" if drift
          else f"all {len(golden['metrics'])} metrics within tolerance of {check}")
    return 1 if drift else 0


GOLDEN_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "golden"
SAE_DIR = Path(__file__).resolve().parent.parent / "reports" / "ioi-tiny" / "saes"
# Every shipped baseline (reports/ioi-tiny/saes), scored together in one shared context.
GOLDEN_SAES = tuple(sorted(path.stem for path in SAE_DIR.glob("*.safetensors")))


def golden_path(task_version: str, sae_name: str) -> Path:
    return GOLDEN_DIR / f"ioi-{task_version}" / f"{sae_name}.json"


def evaluate_shipped(names: tuple[str, ...], out_dir: Path,
                     cache_dir: Path | None = None) -> dict[str, Path]:
    """Score shipped baselines with the golden settings in one `sae-bench run` (one shared clean
    run, counterfactuals and dictionaries); {name: results.json path}."""
    from sae_bench.cli import main

    args = ["run", "--task", "ioi", "--model", "ioi-tiny", "--seed", str(SEED), "--n-fit",
            str(N_FIT), "--n-eval", str(N_EVAL), "--quiet"]
    for name in names:
        args += ["--sae", str(SAE_DIR / f"{name}.safetensors")]
    runs = {name: out_dir / name for name in names}
    args += ["--out", str(out_dir if len(names) > 1 else runs[names[0]])]
    if cache_dir is not None:
        args += ["--cache-dir", str(cache_dir)]
    if main(args) != 0:
        raise RuntimeError(f"evaluating {', '.join(names)} failed")
    return {name: run / "results.json" for name, run in runs.items()}


def refresh(tmp: Path) -> list[Path]:
    from sae_bench.io import write_text_atomic
    from sae_bench.results import load_result

    written = []
    for name, result in evaluate_shipped(GOLDEN_SAES, tmp).items():
        doc = load_result(result)
        path = golden_path(doc.provenance.task_version, name)
        write_text_atomic(path, json.dumps(golden_document(doc), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    import tempfile

    parser = argparse.ArgumentParser(description="Refresh the golden score files deliberately.")
    parser.add_argument("--refresh", action="store_true", required=True)
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for path in refresh(Path(tmp)):
            print(f"wrote {path}")
