"""Command-line interface: a thin layer over the library. `main(argv) -> exit code`.

Any `UserError` becomes one line on stderr and exit code 2; nothing is written on failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sae_bench.errors import UserError


def _add_common(p: argparse.ArgumentParser, *, needs_prompts: bool = True) -> None:
    p.add_argument("--task", default="ioi", help="task name (default: ioi)")
    p.add_argument(
        "--model",
        default="ioi-tiny",
        help="model name: ioi-tiny (offline, default), gpt2 (hub), gpt2-random",
    )
    p.add_argument("--device", default="cpu")
    if needs_prompts:
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--n-fit", type=int, default=None, help="fit prompts (default: task's)")
        p.add_argument("--n-eval", type=int, default=None, help="eval prompts (default: task's)")
        p.add_argument("--batch-size", type=int, default=256)
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="supervised-dictionary cache (default: $SAE_BENCH_CACHE or "
                            "~/.cache/sae_bench)")
        p.add_argument("--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sae-bench", description="Task-grounded evaluation of sparse autoencoders."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("nodes", help="list a task's nodes and cross-sections for a model")
    _add_common(p, needs_prompts=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("reference", help="score the supervised dictionaries (the ground truth)")
    _add_common(p)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--cross-section", action="append", default=None,
                   help="only these cross-sections (repeatable; default: all)")

    p = sub.add_parser("scan", help="activation-patching scan: where each attribute matters")
    _add_common(p, needs_prompts=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=500, help="eval prompts (default 500)")
    p.add_argument("--min-effect", type=float, default=0.05,
                   help="print nodes whose top-1 change or |LD drop| reaches this (default 0.05)")
    p.add_argument("--json", action="store_true", help="every row, machine-readable")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = sub.add_parser("run", help="score an SAE (file, folder or bundle) on a task")
    p.add_argument("--sae", type=Path, required=True,
                   help="SAE file (.safetensors/.pt), SAELens/dictionary_learning/sparsify "
                        "folder, or bundle (folder with bundle.json, or the manifest)")
    _add_common(p)
    p.add_argument("--hook", default=None,
                   help="TransformerLens hook the SAE reads, when its file does not say")
    p.add_argument("--input-scale", type=float, default=None,
                   help="activation normalisation factor (x * scale is what the SAE reads), for "
                        "SAELens folders saved with normalize_activations=expected_average_only_in")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory (default: runs/<SAE name>)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from sae_bench import commands

        return getattr(commands, f"cmd_{args.command}")(args)
    except UserError as exc:
        print(f"sae-bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sae-bench: interrupted; nothing was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

