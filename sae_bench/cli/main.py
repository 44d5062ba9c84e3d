"""Command-line interface: a thin layer over the library. `main(argv) -> exit code`.

Any `UserError`, and any option argparse refuses, becomes one line on stderr and exit code 2;
nothing is written on failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sae_bench.cli.types import (
    OneLineParser,
    device,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    seed,
)
from sae_bench.errors import UserError
from sae_bench.models.registry import DEFAULT_MODEL


def _add_common(p: argparse.ArgumentParser, *, needs_prompts: bool = True) -> None:
    p.add_argument("--task", default="ioi", help="task name (default: ioi)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model name (default: {DEFAULT_MODEL}): ioi-circuit (offline, GPT-2's IOI circuit), "
        "ioi-tiny (offline, fast test model), ioi-planted (offline, hand-set circuit), "
        "gpt2 (hub), gpt2-random",
    )
    p.add_argument("--device", type=device, default="cpu")
    if needs_prompts:
        p.add_argument("--seed", type=seed, default=0)
        p.add_argument("--n-fit", type=positive_int, default=None,
                       help="fit prompts (default: task's)")
        p.add_argument("--n-eval", type=positive_int, default=None,
                       help="eval prompts (default: task's)")
        p.add_argument("--batch-size", type=positive_int, default=256)
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="supervised-dictionary cache (default: $SAE_BENCH_CACHE or "
                            "~/.cache/sae_bench)")
        p.add_argument("--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    p.add_argument("--lrc", action="store_true",
                   help="also build and score the linear-relational-concept dictionary (lrc: "
                        "concepts pulled back from the final residual stream through the mean "
                        "Jacobian; one Jacobian and one rank sweep per node)")

    p = sub.add_parser("scan", help="activation-patching scan: where each attribute matters")
    _add_common(p, needs_prompts=False)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--n", type=positive_int, default=500, help="eval prompts (default 500)")
    p.add_argument("--min-effect", type=non_negative_float, default=0.05,
                   help="print nodes whose top-1 change or |LD drop| reaches this (default 0.05)")
    p.add_argument("--json", action="store_true", help="every row, machine-readable")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = sub.add_parser("run", help="score an SAE (file, folder or bundle) on a task")
    p.add_argument("--sae", type=Path, required=True, action="append",
                   help="SAE file (.safetensors/.pt), SAELens/dictionary_learning/sparsify "
                        "folder, or bundle (folder with bundle.json, or the manifest); repeat "
                        "to score several SAEs against one shared clean run, counterfactuals "
                        "and dictionaries")
    _add_common(p)
    p.add_argument("--hook", default=None,
                   help="TransformerLens hook the SAE reads, when its file does not say")
    p.add_argument("--position", default=None, metavar="ROLE",
                   help="task role to score a single SAE at (e.g. END), when its file does not "
                        "say; without it such an SAE is scored at every role")
    p.add_argument("--input-scale", type=positive_float, default=None,
                   help="activation normalisation factor (x * scale is what the SAE reads), for "
                        "SAELens folders saved with normalize_activations=expected_average_only_in")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory (default: runs/<SAE name>); with several --sae, the "
                        "parent of one directory per SAE (default: runs/)")
    p.add_argument("--no-control-baselines", dest="control_baselines", action="store_false",
                   help="skip the control baselines (DiffMean, steering vector, activation "
                        "scaling): learned once per context and cached, but about 5 minutes "
                        "per cross-section of GPT-2 Small on 2 CPU cores")
    p.add_argument("--skip-completed", action="store_true",
                   help="do nothing if the run directory already holds a valid result for "
                        "this SAE, task version, model and seed (resume interrupted sweeps)")
    p.add_argument("--comparator", choices=["lstsq", "mean", "lrc"], default="lstsq",
                   help="supervised dictionary the SAE is compared with (default lstsq, the "
                        "paper's recommendation; mean: the paper's IOI main variant; lrc: "
                        "linear relational concepts, with a table of where the SAE beats lstsq "
                        "but loses to lrc)")
    # Scale-out (issue 18): sae_bench/cli/executors/; Ray is an optional extra, imported lazily.
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: workers on a Ray cluster, one "
                        "evaluation context each (needs the `ray` extra)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: the cluster to join (default: $RAY_ADDRESS, "
                        "else a local cluster started for this run)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="with --executor ray: number of workers (default: one per GPU with "
                        "--device cuda, else one per CPU; never more than the SAEs)")
    p.add_argument("--retries", type=non_negative_int, default=2,
                   help="with --executor ray: restarts of a killed worker, retrying its SAEs "
                        "(default 2)")

    # ---- issue 17: `compare` (correspondence between two dictionaries at one node) ----------
    p = sub.add_parser("compare", help="correspondence of two dictionaries at one node: latents "
                                       "matched by activation correlation, SVCCA/RSA of the pairs")
    for side in ("a", "b"):
        p.add_argument(side, metavar=side.upper(),
                       help="an SAE (any format `run --sae` reads, one node) or "
                            "supervised[:mean|lstsq] (the supervised dictionary; default lstsq)")
    _add_common(p)
    p.add_argument("--node", default=None, metavar="HOOK[:HEAD]@ROLE",
                   help="the node (needed when both sides are supervised)")
    p.add_argument("--hook", default=None, help="hook the SAEs read, when their files do not say")
    p.add_argument("--position", default=None, metavar="ROLE",
                   help="role the SAEs read, when their files do not say")
    p.add_argument("--input-scale", type=positive_float, default=None,
                   help="activation normalisation factor of the SAEs (as for `run`)")
    p.add_argument("--permutations", type=positive_int, default=1000,
                   help="re-pairings for each permutation p-value (default 1000)")
    p.add_argument("--subsets", type=positive_int, default=100,
                   help="random-subset draws for each baseline (default 100)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for correspondence.json, correspondence.md and the plot")
    # ---- end issue 17 ------------------------------------------------------------------------

    p = sub.add_parser("leaderboard", help="compare saved results (never loads a model)")
    p.add_argument("results", nargs="+", type=Path,
                   help="results.json files or run directories from `sae-bench run`")
    p.add_argument("--out", type=Path, required=True, help="report directory")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("export", help="write saved results in another tool's format "
                                      "(SAEBench: one file per SAE and unit; never loads a model)")
    p.add_argument("results", nargs="+", type=Path,
                   help="results.json files or run directories from `sae-bench run`")
    p.add_argument("--format", required=True, choices=["saebench"],
                   help="saebench: files that validate against SAEBench's BaseEvalOutput")
    p.add_argument("--out", type=Path, required=True, help="output directory")

    p = sub.add_parser("golden", help="pin a result's scores in a golden file, or check a "
                                      "result against one (score regressions in CI)")
    p.add_argument("results", type=Path, help="results.json from `sae-bench run`")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, help="golden file to write (per-metric tolerances)")
    mode.add_argument("--check", type=Path,
                      help="golden file to compare with: exit 1 and one line per drifted metric")

    p = sub.add_parser("train-sae", help="train a reference SAE on task prompts or training text")
    p.add_argument("--arch", required=True,
                   choices=["relu", "gated", "topk", "batchtopk", "jumprelu"])
    p.add_argument("--task", default="ioi")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--node", default=None, help="HOOK[:HEAD]@ROLE")
    p.add_argument("--cross-section", default=None, help="train one SAE per node (a bundle)")
    p.add_argument("--data", choices=["task", "text"], default="task",
                   help="IOI fit prompts (task) or the model's general training text (text)")
    p.add_argument("--d-sae", type=positive_int, default=512)
    p.add_argument("--l1", type=non_negative_float, default=None,
                   help="sparsity coefficient (relu/gated/jumprelu)")
    p.add_argument("--k", type=positive_int, default=None, help="active latents (topk/batchtopk)")
    p.add_argument("--steps", type=positive_int, default=2000)
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--n-fit", type=positive_int, default=20_000,
                   help="fit prompts for --data task")
    p.add_argument("--n-docs", type=positive_int, default=5_000,
                   help="documents for --data text")
    p.add_argument("--saelens", type=Path, default=None,
                   help="also write SAELens folder(s) here (input scale folded into weights)")
    p.add_argument("--dictionary-learning", type=Path, default=None,
                   help="also write dictionary_learning checkpoint folder(s) here")
    p.add_argument("--sparsify", type=Path, default=None,
                   help="also write sparsify folder(s) here (topk only)")
    p.add_argument("--out", type=Path, required=True,
                   help="output .safetensors (one node) or bundle folder (cross-section)")
    p.add_argument("--quiet", action="store_true")
    return parser


def _command_module(name: str):
    """The module holding `cmd_<command>`: imported only when the command runs, so that
    `--help` and a refused option never pay for torch or a model."""
    from sae_bench.cli import commands, compare, reporting, run, train

    return next(m for m in (commands, run, reporting, train, compare) if hasattr(m, name))


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a refused option (2, its line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        name = f"cmd_{args.command.replace('-', '_')}"
        return getattr(_command_module(name), name)(args)
    except UserError as exc:
        print(f"sae-bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader left (`sae-bench nodes | head`): nothing more to print. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("sae-bench: interrupted; no partial file was written (finished runs of a sweep "
              "are kept: resume with --skip-completed).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

