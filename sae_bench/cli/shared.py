"""Setup shared by the commands that evaluate (`reference`, `run`): prompt counts, the
dictionary cache and the evaluation context built from the parsed options."""

from __future__ import annotations

from sae_bench.engine.cache import DictionaryCache
from sae_bench.engine.context import EvalContext
from sae_bench.errors import UserError
from sae_bench.fileio.preflight import check_output_dir
from sae_bench.progress import Progress


def prompt_counts(args, task) -> tuple[int, int]:
    """(fit, eval) prompt counts: the options, or the task's defaults (only when not given:
    an explicit 0 is refused by the parser, never silently replaced)."""
    n_fit = task.default_n["fit"] if args.n_fit is None else args.n_fit
    n_eval = task.default_n["eval"] if args.n_eval is None else args.n_eval
    if n_fit < 1 or n_eval < 1:
        raise UserError(f"--n-fit {n_fit} and --n-eval {n_eval}: both must be at least 1.")
    return n_fit, n_eval


def open_cache(args) -> DictionaryCache:
    """The command's cache, checked writable before any work; entries are written only when
    the command has a result (`DictionaryCache.commit`), so a failed command leaves none."""
    cache = DictionaryCache(args.cache_dir, write_on_commit=True)
    check_output_dir(cache.root, "--cache-dir")
    return cache


def make_context(args, task, model, cache: DictionaryCache) -> EvalContext:
    n_fit, n_eval = prompt_counts(args, task)
    return EvalContext(
        model=model,
        model_name=args.model,
        task=task,
        seed=args.seed,
        n_fit=n_fit,
        n_eval=n_eval,
        cache=cache,
        progress=Progress(enabled=not args.quiet),
        batch_size=args.batch_size,
        comparator=getattr(args, "comparator", "lstsq"),
        with_lrc=getattr(args, "lrc", False),
    )
