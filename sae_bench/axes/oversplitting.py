"""Over-splitting diagnostic (METHOD §4): a binary attribute spread over many latents.

For each value of a binary attribute (e.g. Pos), take the latents that are precise for it
(precision ≥ 0.9: they fire almost only on that value). If several such latents each cover only a
small part of the value while together they cover it, the SAE has split one concept into many
pieces. We report their count, best single recall, union recall and mean pairwise Jaccard overlap
of their active sets (low overlap = the pieces partition the value rather than duplicate it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.axes.interpretability import value_scores


@dataclass(frozen=True)
class SplitReport:
    """Over-splitting report for one value of one attribute."""

    attribute: str
    value: str
    latents: list[int]  # precision ≥ min_precision for the value, by recall descending
    count: int
    best_single_recall: float  # 0.0 when no latent qualifies
    union_recall: float  # share of the value's prompts where any listed latent fires
    mean_pairwise_jaccard: float | None  # None with fewer than 2 latents
    split: bool


def mean_pairwise_jaccard(active: torch.Tensor) -> float | None:
    """Mean over pairs i < j of |A_i ∩ A_j| / |A_i ∪ A_j|; active [n, k] bool. None if k < 2."""
    k = active.shape[1]
    if k < 2:
        return None
    a = active.double()
    inter = a.T @ a  # [k, k]: co-activation counts in one matmul
    size = inter.diagonal()
    union = size[:, None] + size[None, :] - inter
    jac = inter / union.clamp(min=1)  # empty ∪ empty cannot occur: latents are active ≥ once
    i, j = torch.triu_indices(k, k, offset=1)
    return float(jac[i, j].mean())


def oversplitting(
    latents: torch.Tensor,
    labels: torch.Tensor,
    value_names: tuple[str, ...],
    attribute: str,
    *,
    min_precision: float = 0.9,
    whole_recall: float = 0.8,
) -> list[SplitReport]:
    """One report per value of a binary attribute.

    latents [n, d_sae] (active where f > 0), labels [n] long in {0, 1}; value_names names the
    values in index order. Latents never active are ignored (their precision is undefined).

    Flag: split = count > 1 (the value is spread over several precise latents) AND no single
    latent reaches recall ≥ whole_recall (none captures the value on its own) AND their union
    reaches recall ≥ whole_recall. The last condition is our reading of METHOD's "whose union
    covers the value": a few precise but rare latents that together miss most of the value are
    not a split of that value, just sparse fragments.
    """
    active = latents > 0  # [n, d_sae]
    n_values = len(value_names)
    s = value_scores(active, labels.long(), n_values)
    alive = active.any(0)
    reports = []
    for v, vname in enumerate(value_names):
        ok = alive & (s.precision[v] >= min_precision)
        idx = torch.nonzero(ok).flatten()
        rec = s.recall[v, idx]
        # Stable sort so equal recalls keep latent-index order (deterministic output).
        order = torch.sort(rec, descending=True, stable=True).indices
        idx, rec = idx[order], rec[order]
        on_value = labels == v
        n_value = int(on_value.sum())
        sub = active[:, idx]  # [n, k]
        covered = sub[on_value].any(1).sum() if len(idx) else torch.tensor(0)
        union_recall = float(covered) / n_value if n_value else 0.0
        best = float(rec[0]) if len(idx) else 0.0
        count = len(idx)
        split = count > 1 and best < whole_recall and union_recall >= whole_recall
        reports.append(
            SplitReport(attribute, vname, idx.tolist(), count, best, union_recall,
                        mean_pairwise_jaccard(sub), split)
        )
    return reports
