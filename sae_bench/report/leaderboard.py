"""Leaderboards from saved result documents (`results.json` of `sae-bench run`); no model loaded.

`write_leaderboard(paths, out_dir)` writes `leaderboard.md`, `leaderboard.csv`,
`leaderboard.html` (one self-contained interactive page) and the PNG plots.

`sae_bench.report.groups` turns documents into rows (`sae_bench.report.rows`); `tables` ranks
them per axis, `plots` draws them, `html` and `text` write the pages; this module writes the
files. Choices:
- One row per (SAE, unit). Per-node metrics (FVU, L0, coverage, ...) of a multi-node unit are
  the mean over its nodes; the supervised reference is aggregated the same way.
- Every metric the documents carry is read generically (name, category, direction and
  description from the documents' `metric_info`, else `sae_bench.results.metrics.info`), so a
  new metric reaches the CSV and its axis table without a change here.
- Results are never ranked across different (task, task_version, model): each such group gets
  its own tables and plots.
- Deterministic: rows sorted by name before ranking, no timestamps, PNGs without "Software"
  metadata, so the same inputs give byte-identical files.
- All inputs are loaded and every output rendered in memory before anything is written, so a bad
  input raises `UserError` and leaves `out_dir` untouched; each file is replaced atomically.
"""

from __future__ import annotations

from pathlib import Path

from sae_bench.fileio.atomic import write_bytes_atomic, write_text_atomic
from sae_bench.report import html as report_html
from sae_bench.report import plots as report_plots
from sae_bench.report import tables as report_tables
from sae_bench.report import text as report_text
from sae_bench.report.groups import load_groups


def write_leaderboard(result_paths: list[Path], out_dir: Path) -> list[Path]:
    """Write the leaderboard of these result documents into `out_dir`; return the files written.

    Raises `UserError` (and writes nothing) when any input is missing, corrupt or of another
    schema version.
    """
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
