"""Interpretability axis (METHOD §4): do latents match attribute values?

A latent's active set is F = {p : f(p) > 0}. For a property with true set A (an attribute value,
or for name attributes a union of up to 10 names), precision = |A∩F|/|F|, recall = |A∩F|/|A|,
F1 = 2PR/(P+R). A latent's interpretation is its best-F1 property.

Values of one attribute are mutually exclusive, so for a union of values the intersection and the
true set are sums over the values: the best union of the top-k names (by individual F1) is a
cumulative sum over the sorted values, exact and cheap for every latent at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

INTERPRETABLE_F1 = 0.8
MAX_UNION = 10


@dataclass(frozen=True)
class ValueScores:
    """Per (attribute value, latent) scores; shape [n_values, d_sae] each."""

    precision: torch.Tensor
    recall: torch.Tensor
    f1: torch.Tensor


@dataclass(frozen=True)
class Interpretation:
    """Each latent's best property: attribute, its value indices, and the scores; [d_sae] each."""

    attribute: list[str | None]  # None for latents that never fire
    values: list[tuple[int, ...]]
    precision: torch.Tensor
    recall: torch.Tensor
    f1: torch.Tensor


def _prf(inter: torch.Tensor, n_true: torch.Tensor, n_active: torch.Tensor):
    precision = inter / n_active.clamp(min=1)
    recall = inter / n_true.clamp(min=1)
    f1 = 2 * inter / (n_true + n_active).clamp(min=1)  # = 2PR/(P+R), 0 when nothing overlaps
    return precision, recall, f1


def value_scores(active: torch.Tensor, labels: torch.Tensor, n_values: int) -> ValueScores:
    """active [n, d_sae] bool, labels [n] long -> scores for every value × latent."""
    onehot = torch.nn.functional.one_hot(labels, n_values).double()  # [n, V]
    act = active.double()
    inter = onehot.T @ act  # [V, d_sae]
    n_true = onehot.sum(0)[:, None]
    n_active = act.sum(0)[None, :]
    return ValueScores(*(x.float() for x in _prf(inter, n_true, n_active)))


def best_union(
    active: torch.Tensor, labels: torch.Tensor, n_values: int, max_union: int = MAX_UNION
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each latent, the best-F1 union of its top ≤ `max_union` values by individual F1.

    Returns (precision, recall, f1) [d_sae] and the value indices [d_sae, max_union] of the union
    in F1 order, padded with -1.
    """
    onehot = torch.nn.functional.one_hot(labels, n_values).double()
    act = active.double()
    inter = onehot.T @ act  # [V, d_sae]
    n_true = onehot.sum(0)[:, None].expand_as(inter)
    n_active = act.sum(0)  # [d_sae]
    f1 = 2 * inter / (n_true + n_active[None, :]).clamp(min=1)
    k = min(max_union, n_values)
    order = f1.topk(k, dim=0).indices  # [k, d_sae]
    cum_inter = inter.gather(0, order).cumsum(0)
    cum_true = n_true.gather(0, order).cumsum(0)
    p, r, f = _prf(cum_inter, cum_true, n_active[None, :].expand_as(cum_inter))
    best = f.argmax(0)  # [d_sae]: union size - 1
    cols = torch.arange(inter.shape[1])
    members = order.T.clone()  # [d_sae, k]
    members[torch.arange(k)[None, :] > best[:, None]] = -1
    return p[best, cols].float(), r[best, cols].float(), f[best, cols].float(), members


def interpret(
    latents: torch.Tensor,
    labels: dict[str, torch.Tensor],
    n_values: dict[str, int],
    union_attributes: tuple[str, ...] = (),
) -> Interpretation:
    """Best-F1 interpretation of every latent over all attribute values (and, for the attributes
    in `union_attributes`, unions of up to 10 values)."""
    active = latents > 0
    d_sae = latents.shape[1]
    best_f1 = torch.full((d_sae,), -1.0)
    best_p = torch.zeros(d_sae)
    best_r = torch.zeros(d_sae)
    attr: list[str | None] = [None] * d_sae
    vals: list[tuple[int, ...]] = [()] * d_sae
    for name, lab in labels.items():
        if name in union_attributes:
            p, r, f, members = best_union(active, lab, n_values[name])
            value_sets = [tuple(v for v in row.tolist() if v >= 0) for row in members]
        else:
            s = value_scores(active, lab, n_values[name])
            f, idx = s.f1.max(0)
            cols = torch.arange(d_sae)
            p, r = s.precision[idx, cols], s.recall[idx, cols]
            value_sets = [(int(v),) for v in idx.tolist()]
        better = f > best_f1
        best_f1 = torch.where(better, f, best_f1)
        best_p = torch.where(better, p, best_p)
        best_r = torch.where(better, r, best_r)
        for j in torch.nonzero(better).flatten().tolist():
            attr[j], vals[j] = name, value_sets[j]
    dead = active.sum(0) == 0
    for j in torch.nonzero(dead).flatten().tolist():
        attr[j], vals[j] = None, ()
    best_f1 = torch.where(dead, torch.zeros_like(best_f1), best_f1)
    return Interpretation(attr, vals, best_p, best_r, best_f1)


def coverage(
    latents: torch.Tensor, labels: torch.Tensor, n_values: int, threshold: float
) -> tuple[int, int]:
    """(values with some latent at F1 ≥ threshold, values present in the prompts)."""
    s = value_scores(latents > 0, labels, n_values)
    present = torch.bincount(labels, minlength=n_values) > 0
    covered = (s.f1 >= threshold).any(1) & present
    return int(covered.sum()), int(present.sum())
