"""The commands that inspect a task on a model and score its ground truth: `nodes`, `scan`
and `reference`. (`run` is in `sae_bench.cli.run`, the saved-results commands in
`sae_bench.cli.reporting`, `train-sae` in `sae_bench.cli.train`.)"""

from __future__ import annotations

import json
import sys

from sae_bench.cli.shared import make_context, open_cache, prompt_counts
from sae_bench.errors import UserError, unknown_name
from sae_bench.fileio.atomic import write_text_atomic
from sae_bench.fileio.preflight import check_output_file
from sae_bench.models.nodes import node_width
from sae_bench.models.registry import load_model
from sae_bench.progress import Progress
from sae_bench.results.provenance import collect
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
    from sae_bench.truth.scan import candidate_nodes, scan

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
    from sae_bench.truth.reference import evaluate_reference

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
    if any(cs.lrc for cs in doc.cross_sections):
        from sae_bench.lrc.summary import render_lrc_fits

        lines += ["", *render_lrc_fits([f for cs in doc.cross_sections for f in cs.lrc or []])]
    return "\n".join(lines)
