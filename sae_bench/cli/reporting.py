"""Commands that read saved results only and never load a model: `leaderboard`, `export` and
`golden` (pin a result's scores, or check a result against them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sae_bench.errors import UserError
from sae_bench.fileio.preflight import check_output_dir


def cmd_leaderboard(args) -> int:
    from sae_bench.report.leaderboard import run_leaderboard

    check_output_dir(args.out, "--out")
    return run_leaderboard(args.results, args.out, quiet=args.quiet)


def cmd_export(args) -> int:
    from sae_bench.results.document import load_result
    from sae_bench.results.export.saebench import export

    paths = [p / "results.json" if p.is_dir() else p for p in args.results]
    docs = [(load_result(p), p) for p in paths]  # every input is checked before any write
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} is a file; give a directory for the exported files.")
    for doc, path in docs:
        for written in export(doc, path, args.out):
            print(f"wrote {written}", file=sys.stderr)
    return 0


def cmd_golden(args) -> int:
    """`sae-bench golden`: pin a result's scores (--write) or check a result against them."""
    from sae_bench.fileio.atomic import write_text_atomic
    from sae_bench.fileio.preflight import check_output_file
    from sae_bench.results.document import load_result
    from sae_bench.results.golden import (
        compare,
        flatten,
        golden_document,
        read_golden,
        setting_mismatch,
    )

    results: Path = args.results
    write: Path | None = args.write
    check: Path | None = args.check

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
