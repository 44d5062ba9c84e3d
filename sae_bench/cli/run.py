"""`sae-bench run`: score one or more SAEs and write one run directory (results.json,
summary.txt) per SAE; resumable with --skip-completed."""

from __future__ import annotations

import sys
from pathlib import Path

from sae_bench.cli.run_files import evaluate_and_write
from sae_bench.cli.shared import make_context, open_cache, prompt_counts
from sae_bench.errors import UserError
from sae_bench.fileio.atomic import remove_stale_temp_files, write_text_atomic
from sae_bench.fileio.preflight import check_output_dir, check_output_file
from sae_bench.models.registry import load_model
from sae_bench.progress import Progress
from sae_bench.tasks import get_task


def cmd_run(args) -> int:
    """Score one or more SAEs. Several SAEs share one evaluation context: the clean run,
    counterfactual activations and patches, and supervised dictionaries are computed once."""
    from sae_bench.evaluate.pipeline import resolve_units
    from sae_bench.sae import load_sae
    from sae_bench.sae.load import with_canonical_sources

    _check_executor_options(args)
    out_dirs = run_dirs(args)
    for out_dir in out_dirs:  # every output checked before any work
        check_output_dir(out_dir, "--out")
        for name in ("summary.txt", "results.json"):
            check_output_file(out_dir / name, "--out")
    cache = open_cache(args)
    task = get_task(args.task)
    prompt_counts(args, task)
    # Validate every SAE before the (slower) model load.
    loaded = [with_canonical_sources(with_position(
        load_sae(path, hook_name=args.hook, input_scale=args.input_scale), args.position, path),
        path)
              for path in args.sae]
    todo, finished = [], []
    for sae, out_dir in zip(loaded, out_dirs, strict=True):
        if args.skip_completed and _completed(out_dir / "results.json", sae, task, args):
            print(f"skipped: {out_dir / 'results.json'} already holds this evaluation",
                  file=sys.stderr)
            finished.append(out_dir)
        else:
            todo.append((sae, out_dir))
    if not todo:
        _tidy(finished)
        cache.commit()  # nothing staged: only clears temp files that killed runs left
        return 0
    check_trained_on(args.sae, loaded, args.model)
    flags = model_processing(args.sae, loaded)
    if getattr(args, "executor", "local") == "ray":  # issue 18: the same sweep on a Ray cluster
        from sae_bench.cli.executors.ray_executor import run_on_ray

        return run_on_ray(args, task, todo, flags, on_valid=lambda: _tidy(finished))
    progress = Progress(enabled=not args.quiet)
    with progress.step(f"loading model {args.model}"):
        model = load_model(args.model, device=args.device, processing=flags)
    if flags is not None and not args.quiet:
        from sae_bench.models.processing import describe

        print(f"model weights processed as the SAEs declare: {describe(flags)}", file=sys.stderr)
    ctx = make_context(args, task, model, cache)
    plans = [(resolve_units(ctx, sae), out_dir) for sae, out_dir in todo]
    _tidy(finished)  # every SAE is valid: from here on, writing is what the command does
    ctx.plan([node for units, _ in plans for unit in units for node in unit.cross_section.nodes])
    several = len(plans) > 1
    for units, out_dir in progress.bar(plans, desc="SAEs") if several else plans:
        summary = evaluate_and_write(ctx, units, out_dir, args)
        if several:
            print(f"== {out_dir}\n{summary}\n")
            print(f"wrote {out_dir / 'results.json'}", file=sys.stderr)
        else:
            print(summary)
            print(f"\nwrote {out_dir / 'results.json'}", file=sys.stderr)
    return 0



def _check_executor_options(args) -> None:
    """Ray's options apply only with --executor ray, which needs Ray installed (checked before
    any work, so a missing extra costs nothing)."""
    if getattr(args, "executor", "local") == "ray":
        from sae_bench.cli.executors.ray_executor import require_ray

        require_ray()
        return
    for option, value in (("--ray-address", getattr(args, "ray_address", None)),
                          ("--workers", getattr(args, "workers", None))):
        if value is not None:
            raise UserError(f"{option} applies only with --executor ray; add --executor ray "
                            f"or drop {option}.")

def run_dirs(args) -> list[Path]:
    """Where each SAE's results go: --out itself for one SAE, --out/<SAE name> for several."""
    names = [_default_run_name(path) for path in args.sae]
    if len(args.sae) == 1:
        return [args.out or Path("runs") / names[0]]
    parent = args.out or Path("runs")
    if parent.exists() and not parent.is_dir():
        raise UserError(f"--out {parent} is a file; with several --sae give a directory to hold "
                        "one run directory per SAE.")
    seen: dict[str, Path] = {}
    for name, path in zip(names, args.sae, strict=True):
        if name in seen:
            raise UserError(
                f"two SAEs would write {parent / name} ({seen[name]} and {path}); rename one, or "
                "run them separately with their own --out."
            )
        seen[name] = path
    return [parent / name for name in names]


def with_position(loaded, position: str | None, path):
    """`--position ROLE`: score a single SAE at one task role instead of all of them."""
    from sae_bench.sae import SAEBundle

    if position is None:
        return loaded
    if isinstance(loaded, SAEBundle):
        raise UserError(f"--position does not apply to the bundle {path}: each of its entries "
                        "names its node (HOOK[:HEAD]@ROLE); drop --position.")
    return loaded.replace(position=position)


def _members(loaded) -> list:
    """The SAEs of one loaded file: a bundle's members, or the SAE itself."""
    from sae_bench.sae import SAEBundle

    return list(loaded.values()) if isinstance(loaded, SAEBundle) else [loaded]


def check_trained_on(paths, loaded, model_name: str) -> None:
    """Refuse an SAE whose metadata names another model than the one it would be scored on
    (`train-sae` records it; SAEs from elsewhere declare nothing and are taken as they are)."""
    for path, sae in zip(paths, loaded, strict=True):
        for member in _members(sae):
            trained_on = member.metadata.get("trained_on_model")
            if trained_on is not None and trained_on != model_name:
                raise UserError(f"{path} was trained on {trained_on}, but --model is "
                                f"{model_name}; pass --model {trained_on}.")


def model_processing(paths, loaded):
    """The weight processing the SAEs were trained on (None: the model's default)."""
    from sae_bench.models import processing

    declarations = []
    for path, sae in zip(paths, loaded, strict=True):
        declarations += [(str(path), m.metadata) for m in _members(sae)]
    return processing.required(declarations)


def _completed(path: Path, loaded, task, args) -> bool:
    """A finished, readable result for the same SAE file(s), task version, model, seed and
    prompt counts."""
    from sae_bench.results.document import load_result

    if not path.exists():
        return False
    try:
        doc = load_result(path)
    except UserError:
        return False  # unreadable or from another schema: redo it
    p = doc.provenance
    same_saes = {s.sha256 for s in doc.saes} == {m.sha256 for m in _members(loaded)}
    if getattr(args, "position", None) is not None:
        same_saes = same_saes and all(s.node.endswith(f"@{args.position}") for s in doc.saes)
    return (p.task_version == task.version and p.model == args.model and p.seed == args.seed
            and (p.n_fit, p.n_eval) == prompt_counts(args, task) and same_saes
            and doc.comparator == args.comparator)


def _tidy(finished: list[Path]) -> None:
    """Repair finished run directories: restore a summary.txt that a kill lost (it is a pure
    function of results.json) and remove temp files that killed writers left."""
    from sae_bench.results.document import load_result
    from sae_bench.results.summary import render_run_summary

    for out_dir in finished:
        remove_stale_temp_files(out_dir)
        summary = out_dir / "summary.txt"
        text = render_run_summary(load_result(out_dir / "results.json")) + "\n"
        if not summary.is_file() or summary.read_text(errors="replace") != text:
            write_text_atomic(summary, text)
            print(f"restored {summary} from {out_dir / 'results.json'}", file=sys.stderr)


def _default_run_name(sae_path) -> str:
    """The SAE's own name, from its resolved path: `x/sub/..` is `x`, never `..` (which would
    put the results outside --out)."""
    p = Path(sae_path).resolve()
    return (p.stem if p.is_file() else p.name) or "run"
