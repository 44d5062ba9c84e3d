"""The control-baselines report: methods × edits × cross-sections on a shipped model, SAE edits
included, as a Markdown table and one plot per cross-section (effectiveness against size).

    python -m sae_bench.baselines.report --model ioi-tiny \
        --out reports/ioi-tiny/control_baselines.md [--sae NAME=PATH ...]

This is a measurement (it loads the model and trains the baselines), not a view of saved
results; the command and its settings are written at the top of the report.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from sae_bench.baselines.editset import N_TRAIN
from sae_bench.baselines.objective import Settings
from sae_bench.baselines.run import cross_section_baselines
from sae_bench.baselines.sae_edits import sae_edit_scores
from sae_bench.baselines.schema import CrossSectionBaselines, EditScore
from sae_bench.models.registry import DEFAULT_MODEL

COLUMNS = ("method", "edit acc.", "fit acc.", "LD change", "KL to patched", "KL others",
           "size", "ℓ2", "scale")


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def table(rows: Sequence[EditScore]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for m in rows:
        if not m.applicable:
            lines.append(f"| {m.method} | not applicable: {m.reason} |" + " |" * 7)
            continue
        scale = m.hyperparameters.get("scale")
        lines.append("| " + " | ".join([
            m.method, _f(m.edit_accuracy), _f(m.fit_edit_accuracy), _f(m.ld_change, 2),
            _f(m.kl_to_patched), _f(m.kl_others), str(m.size), _f(m.l2_norm, 2),
            "" if scale is None else f"{scale:g}"]) + " |")
    return lines


def plot(result: CrossSectionBaselines, sae_rows: dict[str, list[EditScore]], path: Path
         ) -> None:
    """Edit accuracy against size (log scale), one panel per edit, one series per method."""
    from sae_bench.report import style

    edits = result.edits
    fig, axes = style.figure(len(edits), columns=2)
    for ax, e in zip(axes, edits, strict=True):
        for m in e.methods:
            if m.applicable:
                ax.scatter([float(m.size or 0)], [float(m.edit_accuracy or 0.0)],
                           label=m.method, s=30)
        by_sae: dict[str, list[EditScore]] = {}
        for m in sae_rows.get(e.edit, []):
            by_sae.setdefault(m.method.split(":")[0], []).append(m)
        for name, ms in by_sae.items():
            greedy = [m for m in ms if not m.method.endswith(":aware")]
            ax.plot([float(m.size or 0) for m in greedy],
                    [float(m.edit_accuracy or 0.0) for m in greedy], "-o",
                    markersize=3, linewidth=1, label=f"{name} (greedy k)")
        ax.axhline(e.no_intervention_agreement, linestyle=":", color="grey", linewidth=1)
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(f"{e.edit} ({e.kind})", fontsize=9)
        ax.set_xlabel("edit size (numbers set or changed)", fontsize=8)
        ax.set_ylabel("edit accuracy (eval)", fontsize=8)
        ax.legend(fontsize=6)
    style.title(fig, f"{result.name}: effectiveness against size (dotted: no edit)")
    path.write_bytes(style.png(fig))


def render(results: list[CrossSectionBaselines], sae_rows: dict, command: str, model: str,
           n_fit: int, n_eval: int) -> str:
    lines = [
        f"# Control baselines on {model}",
        "",
        "Generated; do not edit. Made by:",
        "",
        f"    {command}",
        "",
        f"Eval prompts {n_eval}, fit prompts {n_fit} (dictionaries), {N_TRAIN} fit prompts with "
        f"counterfactuals (DiffMean scale, steering, scaling); training settings "
        f"{asdict(Settings())}.",
        "",
        "Columns: edit accuracy on the eval prompts against the control axis's target (the "
        "counterfactual patch's top-1; prefer_S: the S name) and on the fit prompts; LD change "
        "normalised by the reference's (1: as far as the counterfactual patch moves it); "
        "KL(patched ‖ edited); KL(clean ‖ edited) off the target and clean top-1; size = "
        "numbers the edit sets or changes over the nodes (DiffMean: features out and in; "
        "steering: d per node; scaling: one α per node; SAE: latents); ℓ2 = mean norm of the "
        "edit. Name swaps (IO, S) have no fixed-vector or scalar form: only DiffMean per value.",
        "",
    ]
    for r in results:
        lines += [f"## {r.name} ({len(r.nodes)} node(s))", "",
                  f"![effectiveness against size](control_baselines_{r.name}.png)", ""]
        for e in r.edits:
            lines += [f"### {e.edit} ({e.kind}; no-edit agreement "
                      f"{e.no_intervention_agreement:.3f}, causally relevant: "
                      f"{'yes' if e.causally_relevant else 'no'})", ""]
            lines += table([*e.methods, *sae_rows.get(r.name, {}).get(e.edit, [])])
            if e.scalars:
                lines += ["", "Activation scaling, largest |α − 1| first: " + ", ".join(
                    f"{s.node} {s.alpha:.2f}" for s in e.scalars)]
            lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from sae_bench.engine.cache import DictionaryCache
    from sae_bench.engine.context import EvalContext
    from sae_bench.models.registry import load_model
    from sae_bench.progress import Progress
    from sae_bench.sae import SAE, load_sae
    from sae_bench.tasks import get_task

    p = argparse.ArgumentParser(prog="python -m sae_bench.baselines.report")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-fit", type=int, default=None)
    p.add_argument("--n-eval", type=int, default=None)
    p.add_argument("--sae", action="append", default=[], metavar="NAME=PATH",
                   help="an SAE file (single node) to score beside the baselines")
    args = p.parse_args(argv)
    task = get_task("ioi")
    ctx = EvalContext(model=load_model(args.model), model_name=args.model, task=task, seed=0,
                      n_fit=args.n_fit or task.default_n["fit"],
                      n_eval=args.n_eval or task.default_n["eval"],
                      cache=DictionaryCache(), progress=Progress())
    saes: dict[str, SAE] = {}
    for spec in args.sae:
        name, path = spec.split("=", 1)
        loaded = load_sae(path)
        if not isinstance(loaded, SAE):
            raise SystemExit(f"--sae {spec}: a bundle; give one single-node SAE file per --sae")
        saes[name] = loaded
    results, sae_rows = [], {}
    for cs in task.cross_sections(args.model):
        with ctx.progress.step(f"baselines at {cs.name}"):
            result = cross_section_baselines(ctx, cs)
        results.append(result)
        per_edit: dict[str, list[EditScore]] = {}
        for name, sae in saes.items():
            if len(cs.nodes) == 1 and sae.hook_name == cs.nodes[0].hook:
                for attr in cs.attributes:
                    per_edit.setdefault(attr, []).extend(
                        sae_edit_scores(ctx, cs, attr, {cs.nodes[0]: sae}, name))
        sae_rows[cs.name] = per_edit
        plot(result, per_edit, args.out.parent / f"control_baselines_{cs.name}.png")
    command = "python -m sae_bench.baselines.report " + shlex.join(
        list(argv if argv is not None else sys.argv[1:]))
    args.out.write_text(render(results, sae_rows, command, args.model, ctx.n_fit, ctx.n_eval)
                        + "\n")
    ctx.cache.commit()
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from sae_bench.errors import run_script

    raise SystemExit(run_script(main, "python -m sae_bench.baselines.report"))
