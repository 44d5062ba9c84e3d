"""Over-splitting diagnostic (METHOD §4): a binary attribute spread over many latents.

For each value of a binary attribute (e.g. Pos), take the latents that are precise for it
(precision ≥ 0.9: they fire almost only on that value). If several such latents each cover only a
small part of the value while together they cover it, the SAE has split one concept into many
pieces. We report their count, best single recall, union recall and mean pairwise Jaccard overlap
of their active sets (low overlap = the pieces partition the value rather than duplicate it).

Two kinds of precise latents are not split pieces (METHOD §4) and are left out, with their counts
reported:
- precise by chance: a latent that fires on a handful of prompts is often precise for a value
  that half the prompts have. A latent counts only if a one-sided binomial test rejects "its
  active prompts have the value at the base rate" at level `alpha`, Bonferroni-corrected over the
  alive latents (**choice**: with α = 0.01 and 512 latents, a latent needs about 20 active
  prompts at precision 1, or 40 at 0.9).
- explained by a richer property: a latent whose best interpretation is another property (e.g.
  "Mary is IO and the order is ABB") at F1 ≥ `explained_f1` is a precise conjunction latent, not a
  fragment of the binary value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.stats import binom

from sae_bench.axes.interpretability import value_scores

SIGNIFICANCE = 0.01
EXPLAINED_F1 = 0.5


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
    precise_by_chance: int  # precise latents left out: not significant
    explained_by_richer: int  # precise latents left out: a richer property explains them


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
    explained: torch.Tensor | None = None,
    min_precision: float = 0.9,
    whole_recall: float = 0.8,
    alpha: float = SIGNIFICANCE,
) -> list[SplitReport]:
    """One report per value of a binary attribute.

    latents [n, d_sae] (active where f > 0), labels [n] long in {0, 1}; value_names names the
    values in index order. Latents never active are ignored (their precision is undefined).
    explained [d_sae] bool: latents whose best interpretation is a richer property (see the
    module docstring); None: none are.

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
    n_active = active.sum(0)
    n_alive = max(int(alive.sum()), 1)
    if explained is None:
        explained = torch.zeros_like(alive)
    reports = []
    for v, vname in enumerate(value_names):
        precise = alive & (s.precision[v] >= min_precision)
        # P(at least this many of the latent's active prompts have value v | base rate)
        hits = (active & (labels == v)[:, None]).sum(0)
        base = float((labels == v).double().mean())
        p_value = torch.from_numpy(binom.sf(hits.numpy() - 1, n_active.numpy(), base))
        significant = p_value <= alpha / n_alive
        by_chance = precise & ~significant
        richer = precise & significant & explained
        ok = precise & significant & ~explained
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
                        mean_pairwise_jaccard(sub), split, int(by_chance.sum()),
                        int(richer.sum()))
        )
    return reports
