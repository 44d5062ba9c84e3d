"""Scoring one SAE (or bundle) of a `run` and writing its two files: shared by the local run
(`sae_bench.cli.run`) and the Ray executor's workers and driver (`sae_bench.cli.executors`)."""

from __future__ import annotations

from pathlib import Path

from sae_bench.engine.context import EvalContext
from sae_bench.fileio.atomic import remove_stale_temp_files, write_text_atomic
from sae_bench.results.provenance import collect


def evaluate_and_write(ctx: EvalContext, units, out_dir: Path, args) -> str:
    """Evaluate one SAE (or bundle) and write its results.json and summary.txt; the summary.

    Order matters for an interrupted sweep: the cache entries first (they are verified on
    read), then summary.txt, then results.json, which `--skip-completed` takes as the mark of a
    finished run (and from which it restores a missing summary.txt)."""
    results_json, summary = evaluate_document(ctx, units, args)
    ctx.cache.commit()
    write_run_files(out_dir, results_json, summary)
    return summary


def write_run_files(out_dir: Path, results_json: str, summary: str) -> None:
    """A finished run's two files, atomically, summary first (see `evaluate_and_write`); also
    where the Ray executor's driver writes what its workers computed."""
    remove_stale_temp_files(out_dir)
    write_text_atomic(out_dir / "summary.txt", summary + "\n")
    write_text_atomic(out_dir / "results.json", results_json)


def evaluate_document(ctx: EvalContext, units, args) -> tuple[str, str]:
    """(results.json text, summary) of one SAE (or bundle); writes nothing."""
    from sae_bench.evaluate.pipeline import evaluate, sae_info
    from sae_bench.results.document import EvaluationResult, metric_info_for
    from sae_bench.results.summary import render_run_summary
    from sae_bench.truth.reference import model_scores

    saes = [sae_info(node, sae) for u in units for node, sae in u.saes.items()]
    files = {s.source or s.node: s.sha256 or "" for s in saes}
    provenance = collect(
        model_name=args.model, model_fingerprint=ctx.fingerprint, task=ctx.task, seed=args.seed,
        n_fit=ctx.n_fit, n_eval=ctx.n_eval, device=args.device, sae_files=files,
        nodes=[s.node for s in saes],
    )
    results = evaluate(ctx, units)
    # issue 16: once per context (memoised; the learned parameters are in the cache)
    from sae_bench.baselines.run import control_baselines

    baselines = (control_baselines(ctx, [u.cross_section for u in units])
                 if getattr(args, "control_baselines", True) else [])
    warning = ctx.fit_size_warning()  # printed with the summary
    lrc = None
    if ctx.comparator == "lrc":  # where the SAE sits between the label-based and LRC dictionaries
        from sae_bench.lrc.compare import lrc_comparison

        lrc = lrc_comparison(ctx, units, results)
    doc = EvaluationResult(provenance=provenance, comparator=ctx.comparator,
                           warnings=[warning] if warning else [], model=model_scores(ctx),
                           saes=saes, units=results, metric_info=metric_info_for(results),
                           control_baselines=baselines, lrc=lrc)
    return doc.to_json(), render_run_summary(doc)
