"""Short human-readable tables printed at the end of a run (and saved as summary.txt)."""

from __future__ import annotations

from sae_bench.results.document import EvaluationResult, Metric


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
        f"values are SAE (supervised {doc.comparator} dictionary, measured the same way) at the "
        "same nodes",
        *(f"warning: {w}" for w in doc.warnings),
        "",
    ]
    header = (f"{'node':<34} {'suff':>14} {'nec':>14} {'FVU':>14} {'L0':>12} {'gamma':>14} "
              f"{'cov IO/S/Pos (F1>=0.8)':>30}")
    lines.append(header)
    for unit in doc.units:
        suff = _pair(unit.approximation.get("sufficiency"))
        nec = _pair(unit.approximation.get("necessity"))
        multi = len(unit.per_node) > 1
        if multi:
            lines.append(f"{unit.name + ' (all nodes)':<34} {suff:>14} {nec:>14}")
        for n in unit.per_node:
            cov_metrics = [n.interpretability[k] for k in ("coverage_IO", "coverage_S",
                                                            "coverage_Pos")
                           if k in n.interpretability]
            cov = "/".join(f"{m.value:.2f}" for m in cov_metrics if m.value is not None)
            sup_cov = "/".join(f"{m.supervised:.2f}" for m in cov_metrics
                               if m.supervised is not None)
            lines.append(
                f"{n.node:<34} {'' if multi else suff:>14} {'' if multi else nec:>14} "
                f"{_pair(n.approximation['fvu']):>14} {_pair(n.approximation['l0'], '.1f'):>12} "
                f"{_pair(n.approximation['shrinkage']):>14} {f'{cov} ({sup_cov})':>30}"
            )
    lines += ["", "control (share of prompts reaching the counterfactual patch's top-1 token)"]
    for unit in doc.units:
        for c in unit.control_details:
            budgets = " ".join(f"{k}:{v:.2f}" for k, v in c.edit_accuracy_by_budget.items())
            reached = (f"k={c.min_budget_reaching_supervised}"
                       if c.min_budget_reaching_supervised is not None else "not reached")
            mark = "" if c.causally_relevant else " (not causally relevant here)"
            lines.append(
                f"  {unit.name} {c.attribute}{mark}: no edit {c.no_intervention_agreement:.2f}, "
                f"supervised {c.supervised_edit_accuracy:.2f}, SAE greedy {budgets} -> "
                f"{reached}; aware {c.aware_edit_accuracy:.2f} (variant without the "
                f"counterfactual: {c.aware_edit_accuracy_cf_free:.2f})"
            )
    flags = []
    for unit in doc.units:
        for n in unit.per_node:
            flags += [f"  {n.node}: {o.evidence}" for o in n.occlusion_details if o.occluded]
            flags += [f"  {n.node}: {s.attribute}={s.value} split over {s.count} latents "
                      f"(best single recall {s.best_single_recall:.2f}, union "
                      f"{s.union_recall:.2f})" for s in n.oversplitting_details if s.split]
    lines += ["", "occlusion / over-splitting: " + ("none flagged" if not flags else "")] + flags
    if doc.lrc is not None:  # --comparator lrc
        from sae_bench.lrc.summary import render_lrc_comparison, render_lrc_fits

        lines += ["", *render_lrc_fits(doc.lrc.fits), "", *render_lrc_comparison(doc.lrc)]
    return "\n".join(lines)
