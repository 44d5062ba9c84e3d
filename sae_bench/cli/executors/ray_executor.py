"""`sae-bench run --executor ray`: score a sweep on a Ray cluster (the optional `ray` extra).

The driver (this process) validates and loads the SAEs as a local run does, then:
1. one Ray task (`worker.prepare`) resolves every SAE's nodes, refusing the sweep if one is
   invalid, and builds the supervised dictionaries and fit activations once; they stay in
   Ray's object store, and every worker receives that one object;
2. the SAEs are grouped by what they share (`grouping`) and cut into one share per worker;
3. each worker (an actor, `worker.SweepWorker`) builds one evaluation context and scores its
   share, one call per SAE, returning the two files' text;
4. the driver writes each SAE's files as its result arrives, atomically, with the local run's
   own writer, so a worker killed mid-sweep loses nothing finished. Ray restarts a killed
   worker and retries its SAEs (`--retries`); SAEs still failing are reported with the
   reason, and a re-run with `--skip-completed` finishes the sweep.

Ray is imported here only, and this module only when `--executor ray` is asked for.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sae_bench.cli.executors import grouping, resources
from sae_bench.cli.executors.worker import Prepared, Scored, SweepWorker, prepare
from sae_bench.cli.run_files import write_run_files
from sae_bench.errors import UserError
from sae_bench.progress import Progress
from sae_bench.sae.files import one_line


def require_ray() -> Any:
    """The `ray` module, or the one-line error that says how to get it."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray, which is not installed here; install the "
                        "extra (pip install 'principled-sae-bench[ray]') or drop "
                        "--executor ray.") from None
    return ray


def _connect(ray: Any, address: str | None, quiet: bool) -> bool:
    """Join the cluster at `address` (None: RAY_ADDRESS, else start a local one); True when
    this call connected (so the driver disconnects at the end). A cluster the caller already
    joined (tests, notebooks) is used as it is."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": not quiet, "logging_level": logging.WARNING}
    if address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"could not join the Ray cluster at {address}: {one_line(exc, 120)}; "
                        "start one with `ray start --head` and pass its address, or drop "
                        "--ray-address to start a local one.") from None
    return True


def _reason(exc: BaseException) -> str:
    """What killed a remote call, in one line (Ray wraps a worker's exception in its own)."""
    cause = getattr(exc, "cause", None)
    return one_line(cause if isinstance(cause, BaseException) else exc, 300)


def run_on_ray(args: argparse.Namespace, task, todo: Sequence[tuple[Any, Path]], flags,
               on_valid: Callable[[], None]) -> int:
    """Score `todo` ((loaded SAE, run directory) pairs) on the cluster; the exit code.
    `on_valid` runs once every SAE is known to be valid (the local run's tidying of finished
    run directories)."""
    ray = require_ray()
    progress = Progress(enabled=not args.quiet)
    started = _connect(ray, args.ray_address, args.quiet)
    actors: list[Any] = []
    try:
        plan = resources.plan(ray.cluster_resources(), args.device, args.workers, len(todo))
        sae_refs = [ray.put(sae) for sae, _ in todo]
        remote_prepare = ray.remote(_prepare_from_refs).options(
            num_cpus=plan.cpus, num_gpus=plan.gpus, max_retries=args.retries, num_returns=2)
        with progress.step("validating SAEs, dictionaries and fit activations (one worker)"):
            meta_ref, shared_ref = remote_prepare.remote(args, task.name, flags, sae_refs,
                                                         plan.cpus)
            prepared: Prepared = _get(ray, meta_ref)
        if prepared.error is not None:
            raise UserError(prepared.error)
        on_valid()  # every SAE is valid: from here on, writing is what the command does
        shares = grouping.shares(grouping.group(prepared.keys), plan.n_workers)
        worker_class = ray.remote(SweepWorker).options(
            num_cpus=plan.cpus, num_gpus=plan.gpus, max_restarts=args.retries,
            max_task_retries=args.retries)
        all_nodes = [node for per_sae in prepared.nodes for node in per_sae]
        actors = [worker_class.remote(args, task.name, flags, shared_ref, all_nodes, plan.cpus)
                  for _ in shares]
        pending = {actor.score.remote(i, sae_refs[i]): i
                   for actor, share in zip(actors, shares, strict=True) for i in share}
        return _collect(ray, pending, todo, args, progress, plan, prepared)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def _prepare_from_refs(args, task_name, flags, sae_refs, threads):
    # Refs inside a list are not resolved by Ray; the SAEs are fetched here, once.
    import ray

    return prepare(args, task_name, flags, ray.get(sae_refs), threads)


def _get(ray: Any, ref: Any) -> Any:
    """ray.get, with a worker's UserError (a missing model, say) surfacing as our own."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, UserError):
            raise UserError(str(cause)) from None
        raise UserError(f"the Ray worker preparing the sweep failed: {_reason(exc)}") from None


def _collect(ray: Any, pending: dict, todo, args, progress: Progress, plan, prepared) -> int:
    """Write each SAE's files as its result arrives; report failures; the exit code."""
    several = len(todo) > 1
    bar = progress.bar(None, desc="SAEs", total=len(todo)) if several else None
    failed: list[tuple[Path, str]] = []
    rebuilt = 0
    waiting = list(pending)
    while waiting:
        done, waiting = ray.wait(waiting, num_returns=1)
        out_dir = todo[pending[done[0]]][1]
        try:
            scored: Scored = ray.get(done[0])
        except ray.exceptions.RayError as exc:
            failed.append((out_dir, _reason(exc)))
            print(f"sae-bench: failed: {out_dir}: {_reason(exc)}", file=sys.stderr)
        else:
            rebuilt += scored.built
            write_run_files(out_dir, scored.results_json, scored.summary)
            if several:
                print(f"== {out_dir}\n{scored.summary}\n")
                print(f"wrote {out_dir / 'results.json'}", file=sys.stderr)
            else:
                print(scored.summary)
                print(f"\nwrote {out_dir / 'results.json'}", file=sys.stderr)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    print(f"ray: {plan.describe()} scored {len(todo) - len(failed)} of {len(todo)} SAE(s); "
          f"dictionaries and fit activations: {prepared.built} cache entries built once, "
          f"{rebuilt} rebuilt by workers", file=sys.stderr)
    if failed:
        print(f"sae-bench: {len(failed)} of {len(todo)} SAE(s) failed (their reasons above); "
              "the finished ones are written: re-run with --skip-completed to finish the "
              "sweep.", file=sys.stderr)
        return 1
    return 0
