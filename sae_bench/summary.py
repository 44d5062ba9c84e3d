"""Short human-readable tables printed at the end of a run (and saved as summary.txt)."""

from __future__ import annotations

from sae_bench.results import EvaluationResult, Metric


def _pair(m: Metric | None, fmt: str = ".3f") -> str:
    if m is None or m.value is None:
        return "n/a"
    sup = "" if m.supervised is None else f" ({m.supervised:{fmt}})"
    return f"{m.value:{fmt}}{sup}"


def render_run_summary(doc: EvaluationResult) -> str:
    p = doc.provenance
    lines = [
        f"{p.model} on {p.task} v{p.task_version}, seed {p.seed}: model accuracy "
        f"{doc.model.accuracy:.3f}, mean LD {doc.model.mean_logit_diff:.3f} "
        f"(n_eval={p.n_eval})",
        "values are SAE (supervised dictionary) at the same nodes",
        "",
    ]
    header = (f"{'node':<34} {'suff':>14} {'nec':>14} {'FVU':>14} {'L0':>12} {'gamma':>14} "
              f"{'cov IO/S/Pos (F1>=0.8)':>24}")
    lines.append(header)
    for unit in doc.units:
        suff = _pair(unit.approximation.get("sufficiency"))
        nec = _pair(unit.approximation.get("necessity"))
        multi = len(unit.per_node) > 1
        if multi:
            lines.append(f"{unit.name + ' (all nodes)':<34} {suff:>14} {nec:>14}")
        for n in unit.per_node:
            cov = "/".join(
                f"{n.interpretability[k].value:.2f}"
                for k in ("coverage_IO", "coverage_S", "coverage_Pos")
                if k in n.interpretability and n.interpretability[k].value is not None
            )
            lines.append(
                f"{n.node:<34} {'' if multi else suff:>14} {'' if multi else nec:>14} "
                f"{_pair(n.approximation['fvu']):>14} {_pair(n.approximation['l0'], '.1f'):>12} "
                f"{_pair(n.approximation['shrinkage']):>14} {cov + ' (1.00)':>24}"
            )
    return "\n".join(lines)
