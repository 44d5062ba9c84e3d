"""Refresh the shipped golden score files: score every shipped baseline with the golden
settings through `sae-bench run`, and write one golden file per SAE.

    python -m sae_bench.cli.golden_refresh --refresh

It lives in the CLI room because it drives the `run` command; `sae_bench.results.golden`
(flatten, tolerances, compare) never imports the CLI.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sae_bench.results.golden import N_EVAL, N_FIT, SEED, golden_document

_REPO = Path(__file__).resolve().parent.parent.parent
GOLDEN_DIR = _REPO / "benchmarks" / "golden"
SAE_DIR = _REPO / "reports" / "ioi-tiny" / "saes"
# Every shipped baseline (reports/ioi-tiny/saes), scored together in one shared context.
GOLDEN_SAES = tuple(sorted(path.stem for path in SAE_DIR.glob("*.safetensors")))


def golden_path(task_version: str, sae_name: str) -> Path:
    return GOLDEN_DIR / f"ioi-{task_version}" / f"{sae_name}.json"


def evaluate_shipped(names: tuple[str, ...], out_dir: Path,
                     cache_dir: Path | None = None) -> dict[str, Path]:
    """Score shipped baselines with the golden settings in one `sae-bench run` (one shared clean
    run, counterfactuals and dictionaries); {name: results.json path}."""
    from sae_bench.cli.main import main

    args = ["run", "--task", "ioi", "--model", "ioi-tiny", "--seed", str(SEED), "--n-fit",
            str(N_FIT), "--n-eval", str(N_EVAL), "--quiet",
            # Goldens pin the SAE's own metrics; the control baselines do not depend on the SAE
            # and have tests of their own, so the golden runs skip them.
            "--no-control-baselines"]
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
    from sae_bench.fileio.atomic import write_text_atomic
    from sae_bench.results.document import load_result

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
