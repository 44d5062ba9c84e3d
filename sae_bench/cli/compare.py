"""`sae-bench compare`: the correspondence of two dictionaries at one node (issue 17; the maths is
in `sae_bench.compare`, documented in docs/correspondence.md)."""

from __future__ import annotations

import sys

from sae_bench.cli.run import check_trained_on, model_processing
from sae_bench.cli.shared import make_context, open_cache, prompt_counts
from sae_bench.errors import UserError
from sae_bench.fileio.atomic import write_bytes_atomic, write_text_atomic
from sae_bench.fileio.preflight import check_output_dir, check_output_file
from sae_bench.models.nodes import node_width, validate_hook
from sae_bench.models.registry import load_model
from sae_bench.progress import Progress
from sae_bench.results.provenance import collect
from sae_bench.tasks import get_task


def cmd_compare(args) -> int:
    """Correspondence of two dictionaries at one node (sae_bench/compare/): every input is
    checked before the model loads, and the three files are written only at the end."""
    from sae_bench.compare.report import PLOT_NAME, plot_png, render
    from sae_bench.compare.run import compare
    from sae_bench.compare.sides import parse_side, resolve_node

    names = ("correspondence.json", "correspondence.md", PLOT_NAME)
    check_output_dir(args.out, "--out")
    for name in names:
        check_output_file(args.out / name, "--out")
    cache = open_cache(args)
    task = get_task(args.task)
    prompt_counts(args, task)
    specs = [parse_side(s, hook=args.hook, input_scale=args.input_scale) for s in (args.a, args.b)]
    node = resolve_node(specs, args.node, args.position)
    if node.position not in task.roles:
        raise UserError(f"node {node.name}: unknown position {node.position!r}; task "
                        f"{task.name} has roles {', '.join(task.roles)}.")
    saes = [(s.text, s.sae) for s in specs if s.sae is not None]
    progress = Progress(enabled=not args.quiet)
    check_trained_on([t for t, _ in saes], [sae for _, sae in saes], args.model)
    flags = model_processing([t for t, _ in saes], [sae for _, sae in saes])
    with progress.step(f"loading model {args.model}"):
        model = load_model(args.model, device=args.device, processing=flags)
    validate_hook(model, node)
    for _, sae in saes:
        sae.check_width(node_width(model, node), node.name)
    ctx = make_context(args, task, model, cache)
    provenance = collect(
        model_name=args.model, model_fingerprint=ctx.fingerprint, task=task, seed=args.seed,
        n_fit=ctx.n_fit, n_eval=ctx.n_eval, device=args.device, nodes=[node.name],
        sae_files={s.label: s.sae.sha256 or "" for s in specs if s.sae is not None},
    )
    doc = compare(ctx, node, specs[0], specs[1], provenance,
                  n_permutations=args.permutations, n_subsets=args.subsets)
    for warning in doc.warnings:
        print(f"sae-bench: warning: {warning}", file=sys.stderr)
    cache.commit()
    text = render(doc)
    write_bytes_atomic(args.out / PLOT_NAME, plot_png(doc))
    write_text_atomic(args.out / "correspondence.md", text)
    write_text_atomic(args.out / "correspondence.json", doc.to_json())
    print(text)
    print(f"wrote {args.out / 'correspondence.json'}", file=sys.stderr)
    return 0
