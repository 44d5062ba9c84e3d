"""Scores of an edit on the eval prompts, the same for every method (SAE edits included):
edit accuracy, normalised logit-difference change, faithfulness (KL to the counterfactually
patched run; KL to the clean run off the two answer tokens), and the edit's size and ℓ2 norm."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from sae_bench.baselines.editset import PREFER_S, EditSet
from sae_bench.baselines.forward import end_log_probs
from sae_bench.baselines.objective import faithfulness
from sae_bench.baselines.schema import EditScore
from sae_bench.models.nodes import Node

# The LD change is normalised by the reference's; below this share of the clean |LD| the
# reference barely moves and the ratio is noise (**choice**, as approximation's ablation gap).
MIN_REFERENCE_GAP = 0.05


@dataclass(frozen=True)
class Reference:
    """What every edit of one edit set is compared with, computed once."""

    clean_ld: torch.Tensor  # [n]
    reference_ld: torch.Tensor  # [n] LD of the reference run
    clean_log_probs: torch.Tensor  # [n, V]
    patched_log_probs: torch.Tensor | None  # [n, V]; None: no counterfactual prompt


def reference(edit_set: EditSet, clean_log_probs: torch.Tensor | None = None) -> Reference:
    """The reference runs of `edit_set`; `clean_log_probs` [n, V] of its runner's clean run when
    the caller already has them (they are the same for every edit of a prompt set)."""
    runner = edit_set.runner
    clean_ld = runner.clean().logit_diff
    clean_lp = end_log_probs(runner, {}) if clean_log_probs is None else clean_log_probs
    if edit_set.attribute == PREFER_S:
        return Reference(clean_ld, -clean_ld, clean_lp, None)
    patched = dict(edit_set.cf_acts)
    return Reference(clean_ld, runner.run(patched, argmax=False).logit_diff, clean_lp,
                     end_log_probs(runner, patched))


def edit_norm(edit_set: EditSet, edited: Mapping[Node, torch.Tensor]) -> float:
    """Mean over prompts of the edit's ℓ2 norm taken over all nodes together."""
    sq = sum(((edited[n] - edit_set.acts[n]) ** 2).sum(1) for n in edit_set.nodes)
    return float(torch.as_tensor(sq).sqrt().mean())


def score(edit_set: EditSet, ref: Reference, method: str, edited: Mapping[Node, torch.Tensor],
          size: int, **extra) -> EditScore:
    """Every score of one edit {node: [n, width]} of `edit_set`'s prompts."""
    run = edit_set.runner.run(dict(edited), argmax=True)
    assert run.argmax is not None
    accuracy = float((run.argmax == edit_set.target).float().mean())
    gap = float((ref.reference_ld - ref.clean_ld).mean())
    reasons = []
    if abs(gap) >= MIN_REFERENCE_GAP * float(ref.clean_ld.abs().mean()):
        ld_change: float | None = float((run.logit_diff - ref.clean_ld).mean()) / gap
    else:
        ld_change = None
        reasons.append(f"the reference moves the mean LD by only {gap:.3f}")
    log_probs = end_log_probs(edit_set.runner, dict(edited))
    kl_patched = None
    if ref.patched_log_probs is None:
        reasons.append("no counterfactual prompt: no patched distribution to compare with")
    else:
        p = ref.patched_log_probs
        kl_patched = float((p.exp() * (p - log_probs)).sum(-1).mean())
    kl_others = float(faithfulness(log_probs, ref.clean_log_probs, edit_set.target,
                                   edit_set.clean_top))
    return EditScore(
        method=method, applicable=True, reason="; ".join(reasons) or None,
        edit_accuracy=accuracy, ld_change=ld_change, kl_to_patched=kl_patched,
        kl_others=kl_others, size=size, l2_norm=edit_norm(edit_set, edited), **extra)


def not_applicable(method: str, reason: str) -> EditScore:
    return EditScore(method=method, applicable=False, reason=reason)
