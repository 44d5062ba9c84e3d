"""What one worker process does, free of Ray (the driver wraps these with `ray.remote`):
`prepare` validates the sweep and builds the shared dictionaries once; a `SweepWorker` builds
one evaluation context, takes the shared values, and scores SAEs one call at a time, returning
the files' text for the driver to write (so nothing depends on a filesystem shared with it)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sae_bench.cli.executors.grouping import GroupKey
from sae_bench.cli.executors.handover import CountingCache, SharedFit, build, hand_over
from sae_bench.cli.run_files import evaluate_document
from sae_bench.cli.shared import make_context
from sae_bench.engine.context import EvalContext
from sae_bench.errors import UserError
from sae_bench.evaluate.pipeline import resolve_units
from sae_bench.models.nodes import Node
from sae_bench.models.registry import load_model
from sae_bench.tasks import get_task


@dataclass(frozen=True)
class Prepared:
    error: str | None  # a UserError's message: the sweep is refused before any work
    nodes: tuple[tuple[Node, ...], ...]  # per SAE, the nodes its units patch, in plan order
    keys: tuple[GroupKey, ...]  # per SAE, what it shares with others
    built: int  # cache entries (dictionaries, fit activations) built, not read from disk


@dataclass(frozen=True)
class Scored:
    index: int  # the SAE's place in the sweep
    results_json: str
    summary: str
    built: int  # cache entries this call had to build itself (0 when the hand-over worked)


def _context(args: argparse.Namespace, task_name: str, flags, cache: CountingCache,
             threads: int) -> EvalContext:
    # Threads first: a float32 sum's last digits depend on the thread count, so the local run
    # a sweep is compared with must use the same count (README, "What a results file depends
    # on"). Workers are quiet: their progress would interleave on the driver's terminal.
    torch.set_num_threads(threads)
    quiet = argparse.Namespace(**{**vars(args), "quiet": True})
    task = get_task(task_name)
    model = load_model(args.model, device=args.device, processing=flags)
    return make_context(quiet, task, model, cache)


def prepare(args: argparse.Namespace, task_name: str, flags, saes: Sequence,
            threads: int) -> tuple[Prepared, SharedFit | None]:
    """Resolve every SAE's units (refusing the sweep on the first invalid one, as a local run
    does before writing anything), then build the dictionaries and fit activations of every
    node once, committing them to this machine's cache."""
    cache = CountingCache(args.cache_dir, write_on_commit=True)
    ctx = _context(args, task_name, flags, cache, threads)
    try:
        plans = [resolve_units(ctx, sae) for sae in saes]
    except UserError as exc:
        return Prepared(str(exc), (), (), 0), None
    nodes = tuple(tuple(n for unit in units for n in unit.cross_section.nodes)
                  for units in plans)
    shared = build(ctx, [unit.cross_section.nodes for units in plans for unit in units],
                   [unit.cross_section for units in plans for unit in units]
                   if getattr(args, "control_baselines", True) else [])
    cache.commit()
    keys = tuple(GroupKey(args.model, ctx.task.name, args.seed, ctx.n_fit, ctx.n_eval,
                          tuple(sorted({n.name for n in per_sae}))) for per_sae in nodes)
    return Prepared(None, nodes, keys, cache.built), shared


class SweepWorker:
    """One evaluation context per worker process, built once (and again by Ray after a
    restart), scoring one SAE per `score` call."""

    def __init__(self, args: argparse.Namespace, task_name: str, flags, shared: SharedFit,
                 plan: Sequence[Node], threads: int) -> None:
        self.args = args
        # Read-only here: staged entries are never committed (the hand-over fills the context).
        self.cache = CountingCache(args.cache_dir, write_on_commit=True)
        self.ctx = _context(args, task_name, flags, self.cache, threads)
        hand_over(self.ctx, shared)
        # The whole sweep's nodes, as the local run plans them, so the clean run caches the
        # same layers whichever share this worker holds.
        self.ctx.plan(plan)

    def score(self, index: int, sae) -> Scored:
        before = self.cache.built
        results_json, summary = evaluate_document(self.ctx, resolve_units(self.ctx, sae),
                                                  self.args)
        return Scored(index, results_json, summary, self.cache.built - before)
