"""The CLI's subcommands, each a function of the parsed arguments returning an exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sae_bench.cache import DictionaryCache
from sae_bench.context import EvalContext
from sae_bench.errors import UserError, unknown_name
from sae_bench.io import remove_stale_temp_files, write_text_atomic
from sae_bench.models import load_model
from sae_bench.nodes import node_width
from sae_bench.outputs import check_output_dir, check_output_file
from sae_bench.progress import Progress
from sae_bench.provenance import collect
from sae_bench.tasks import get_task


def cmd_nodes(args) -> int:
    task = get_task(args.task)
    model = load_model(args.model, device=args.device)
    nodes = task.nodes(args.model, model)
    cross_sections = task.cross_sections(args.model)
    doc = {
        "task": task.name,
        "task_version": task.version,
        "model": args.model,
        "roles": list(task.roles),
        "nodes": [
            {"node": n.name, "hook": n.hook, "head": n.head, "position": n.position,
             "width": node_width(model, n)}
            for n in nodes
        ],
        "cross_sections": [
            {"name": cs.name, "description": cs.description, "attributes": list(cs.attributes),
             "nodes": [n.name for n in cs.nodes]}
            for cs in cross_sections
        ],
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"task {task.name} v{task.version} on {args.model}; roles: {', '.join(task.roles)}")
    print(f"\ncross-sections ({len(cross_sections)}):")
    for cs in doc["cross_sections"]:
        print(f"  {cs['name']:<14} edits {'/'.join(cs['attributes']):<10} {len(cs['nodes'])} nodes"
              f"  ({cs['description']})")
    print(f"\nnodes ({len(nodes)}): HOOK[:HEAD]@ROLE  width")
    for n in doc["nodes"]:
        print(f"  {n['node']:<40} {n['width']}")
    return 0


def cmd_scan(args) -> int:
    from sae_bench.scan import candidate_nodes, scan

    task = get_task(args.task)
    model = load_model(args.model, device=args.device)
    data = task.build(model, n=args.n, seed=args.seed)
    progress = Progress(enabled=not args.quiet)
    rows = scan(model, data, candidate_nodes(model, task.roles), task.attributes, progress)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    by_node: dict[str, dict] = {}
    for r in rows:
        by_node.setdefault(r.node, {})[r.attribute] = r
    print(f"activation patching on {args.model}, n={args.n}: per attribute, share of prompts "
          "whose top-1 changes / LD drop as a share of clean LD")
    print(f"{'node':<36} " + " ".join(f"{a:>16}" for a in task.attributes))
    for node, cells in by_node.items():
        if max(max(c.top1_changed, abs(c.ld_drop)) for c in cells.values()) < args.min_effect:
            continue
        print(f"{node:<36} " + " ".join(
            f"{cells[a].top1_changed:>7.2f} {cells[a].ld_drop:>+8.2f}" for a in task.attributes))
    return 0


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
    )


def _select_cross_sections(task, model_name, wanted):
    available = task.cross_sections(model_name)
    if not available:
        raise UserError(
            f"task {task.name} defines no cross-sections for model {model_name!r}; "
            "pick a model with a registered circuit (see `sae-bench nodes`)."
        )
    if not wanted:
        return available
    by_name = {cs.name: cs for cs in available}
    for name in wanted:
        if name not in by_name:
            raise unknown_name("cross-section", name, by_name)
    return [by_name[name] for name in wanted]


def cmd_reference(args) -> int:
    from sae_bench.reference import evaluate_reference

    check_output_file(args.out, "--out", example="ref.json")
    cache = open_cache(args)
    task = get_task(args.task)
    prompt_counts(args, task)
    cross_sections = _select_cross_sections(task, args.model, args.cross_section)
    progress = Progress(enabled=not args.quiet)
    with progress.step(f"loading model {args.model}"):
        model = load_model(args.model, device=args.device)
    ctx = make_context(args, task, model, cache)
    provenance = collect(
        model_name=args.model, model_fingerprint=ctx.fingerprint, task=task, seed=args.seed,
        n_fit=ctx.n_fit, n_eval=ctx.n_eval, device=args.device,
        nodes=[n.name for cs in cross_sections for n in cs.nodes],
    )
    doc = evaluate_reference(ctx, cross_sections, provenance)
    cache.commit()
    write_text_atomic(args.out, doc.model_dump_json(indent=2) + "\n")
    print(render_reference_summary(doc), file=sys.stdout)
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


def render_reference_summary(doc) -> str:
    lines = [
        f"{doc.provenance.model} on {doc.provenance.task} v{doc.provenance.task_version}: "
        f"accuracy {doc.model.accuracy:.3f}, mean logit diff {doc.model.mean_logit_diff:.3f} "
        f"(n={doc.model.n_eval})",
        "",
        f"{'cross-section':<14} {'dict':<6} {'suff':>6} {'nec':>6} {'LD_MA':>7}  "
        "edits: attribute no-edit-agreement -> supervised edit accuracy",
    ]
    for cs in doc.cross_sections:
        for method, s in cs.dictionaries.items():
            edits = "  ".join(
                f"{a}{'' if e.causally_relevant else '*'} {e.no_intervention_agreement:.2f}->"
                f"{e.edit_accuracy[method]:.2f}"
                for a, e in cs.edits.items()
            )
            nec = "n/a" if s.necessity is None else f"{s.necessity:.3f}"
            lines.append(
                f"{cs.name:<14} {method:<6} {s.sufficiency:>6.3f} {nec:>6} "
                f"{cs.mean_ablation_logit_diff:>7.3f}  {edits}"
            )
    lines.append("* attribute not causally relevant here (its counterfactual patch changes the "
                 "top-1 token on < 50% of prompts)")
    return "\n".join(lines)


def cmd_leaderboard(args) -> int:
    from sae_bench.leaderboard import run_leaderboard

    check_output_dir(args.out, "--out")
    return run_leaderboard(args.results, args.out, quiet=args.quiet)


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


def cmd_export(args) -> int:
    from sae_bench.export.saebench import export
    from sae_bench.results import load_result

    paths = [p / "results.json" if p.is_dir() else p for p in args.results]
    docs = [(load_result(p), p) for p in paths]  # every input is checked before any write
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} is a file; give a directory for the exported files.")
    for doc, path in docs:
        for written in export(doc, path, args.out):
            print(f"wrote {written}", file=sys.stderr)
    return 0


def cmd_golden(args) -> int:
    from sae_bench.golden import cmd_golden

    return cmd_golden(args.results, args.write, args.check)


def cmd_run(args) -> int:
    """Score one or more SAEs. Several SAEs share one evaluation context: the clean run,
    counterfactual activations and patches, and supervised dictionaries are computed once."""
    from sae_bench.evaluate import resolve_units
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
    flags = model_processing(args.sae, loaded)
    if getattr(args, "executor", "local") == "ray":  # issue 18: the same sweep on a Ray cluster
        from sae_bench.executors.ray_executor import run_on_ray

        return run_on_ray(args, task, todo, flags, on_valid=lambda: _tidy(finished))
    progress = Progress(enabled=not args.quiet)
    with progress.step(f"loading model {args.model}"):
        model = load_model(args.model, device=args.device, processing=flags)
    if flags is not None and not args.quiet:
        from sae_bench.processing import describe

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
        from sae_bench.executors.ray_executor import require_ray

        require_ray()
        return
    for option, value in (("--ray-address", getattr(args, "ray_address", None)),
                          ("--workers", getattr(args, "workers", None))):
        if value is not None:
            raise UserError(f"{option} applies only with --executor ray; add --executor ray "
                            f"or drop {option}.")


def with_position(loaded, position: str | None, path):
    """`--position ROLE`: score a single SAE at one task role instead of all of them."""
    from sae_bench.sae import SAEBundle

    if position is None:
        return loaded
    if isinstance(loaded, SAEBundle):
        raise UserError(f"--position does not apply to the bundle {path}: each of its entries "
                        "names its node (HOOK[:HEAD]@ROLE); drop --position.")
    return loaded.replace(position=position)


def model_processing(paths, loaded):
    """The weight processing the SAEs were trained on (None: the model's default)."""
    from sae_bench import processing
    from sae_bench.sae import SAEBundle

    declarations = []
    for path, sae in zip(paths, loaded, strict=True):
        members = list(sae.values()) if isinstance(sae, SAEBundle) else [sae]
        declarations += [(str(path), m.metadata) for m in members]
    return processing.required(declarations)


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
    from sae_bench.evaluate import evaluate, sae_info
    from sae_bench.reference import model_scores
    from sae_bench.results import EvaluationResult, metric_info_for
    from sae_bench.summary import render_run_summary

    saes = [sae_info(node, sae) for u in units for node, sae in u.saes.items()]
    files = {s.source or s.node: s.sha256 or "" for s in saes}
    provenance = collect(
        model_name=args.model, model_fingerprint=ctx.fingerprint, task=ctx.task, seed=args.seed,
        n_fit=ctx.n_fit, n_eval=ctx.n_eval, device=args.device, sae_files=files,
        nodes=[s.node for s in saes],
    )
    results = evaluate(ctx, units)
    warning = ctx.fit_size_warning()  # printed with the summary
    doc = EvaluationResult(provenance=provenance, comparator=ctx.comparator,
                           warnings=[warning] if warning else [], model=model_scores(ctx),
                           saes=saes, units=results, metric_info=metric_info_for(results))
    return doc.to_json(), render_run_summary(doc)


def _completed(path: Path, loaded, task, args) -> bool:
    """A finished, readable result for the same SAE file(s), task version, model, seed and
    prompt counts."""
    from sae_bench.results import load_result
    from sae_bench.sae import SAEBundle

    if not path.exists():
        return False
    try:
        doc = load_result(path)
    except UserError:
        return False  # unreadable or from another schema: redo it
    p = doc.provenance
    members = list(loaded.values()) if isinstance(loaded, SAEBundle) else [loaded]
    same_saes = {s.sha256 for s in doc.saes} == {m.sha256 for m in members}
    if getattr(args, "position", None) is not None:
        same_saes = same_saes and all(s.node.endswith(f"@{args.position}") for s in doc.saes)
    return (p.task_version == task.version and p.model == args.model and p.seed == args.seed
            and (p.n_fit, p.n_eval) == prompt_counts(args, task) and same_saes
            and doc.comparator == args.comparator)


def _tidy(finished: list[Path]) -> None:
    """Repair finished run directories: restore a summary.txt that a kill lost (it is a pure
    function of results.json) and remove temp files that killed writers left."""
    from sae_bench.results import load_result
    from sae_bench.summary import render_run_summary

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
