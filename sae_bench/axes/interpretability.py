"""Interpretability axis (METHOD §4): do latents match attribute values?

A latent's active set is F = {p : f(p) > 0}. For a property with true set A, precision =
|A∩F|/|F|, recall = |A∩F|/|A|, F1 = 2PR/(P+R). A latent's interpretation is its best-F1 property.
The properties are the task's (`Task.properties`); for IOI, as in the paper's appendix A.12: each
attribute value, name∧Pos conjunctions, "the name is in the sentence", the name at the first and
second name position, and for names unions of up to 10 values.

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


@dataclass(frozen=True)
class PropertyFamily:
    """A family of binary properties of prompts, one per value: `member[p, v]` says whether
    prompt p has property v (e.g. "IO is Mary", "Mary is IO and the order is ABB", "Mary is in
    the sentence").

    `exclusive`: every prompt has exactly one property of the family (attribute values and their
    conjunctions), which makes the best union a cumulative sum. `unions`: also score unions of
    the top ≤ `MAX_UNION` properties by individual F1 (name families, METHOD §4).
    """

    name: str
    values: tuple[str, ...]
    member: torch.Tensor  # [n, n_values] bool
    exclusive: bool = True
    unions: bool = False

    @classmethod
    def of_attribute(cls, name: str, values: tuple[str, ...], labels: torch.Tensor,
                     unions: bool = False) -> PropertyFamily:
        member = torch.nn.functional.one_hot(labels.long(), len(values)).bool()
        return cls(name, values, member, exclusive=True, unions=unions)


def _family_scores(active: torch.Tensor, fam: PropertyFamily):
    """Best property (or union) of `fam` for every latent: precision, recall, f1 [d_sae] and the
    value indices of the chosen union [d_sae, ≤ MAX_UNION] padded with -1."""
    n_values = fam.member.shape[1]
    if not fam.unions:
        member = fam.member.double()
        inter = member.T @ active.double()
        p, r, f = _prf(inter, member.sum(0)[:, None], active.double().sum(0)[None, :])
        f_best, idx = f.max(0)
        cols = torch.arange(active.shape[1])
        return p[idx, cols].float(), r[idx, cols].float(), f_best.float(), idx[:, None]
    if fam.exclusive:
        labels = fam.member.double().argmax(1)
        return best_union(active, labels, n_values)
    return _best_union_overlapping(active, fam.member)


def _best_union_overlapping(active: torch.Tensor, member: torch.Tensor, max_union: int = MAX_UNION):
    """`best_union` for properties a prompt can have several of at once ("name in sentence"):
    the union's true set is an OR of value sets, so it is built step by step."""
    act = active.double()
    m = member.double()
    n_active = act.sum(0)  # [d_sae]
    inter1 = m.T @ act  # [V, d_sae]
    f1 = 2 * inter1 / (m.sum(0)[:, None] + n_active[None, :]).clamp(min=1)
    k = min(max_union, member.shape[1])
    order = f1.topk(k, dim=0).indices  # [k, d_sae]
    covered = torch.zeros_like(active)
    zeros = torch.zeros(act.shape[1], dtype=torch.float64)
    best_p, best_r, best_f = zeros, zeros, zeros
    best_size = torch.zeros(act.shape[1], dtype=torch.long)
    for step in range(k):
        covered = covered | member[:, order[step]]  # [n, d_sae]: prompt in the union of latent j
        inter = (covered & active).double().sum(0)
        p, r, f = _prf(inter, covered.double().sum(0), n_active)
        better = f > best_f
        best_p, best_r = torch.where(better, p, best_p), torch.where(better, r, best_r)
        best_f = torch.where(better, f, best_f)
        best_size = torch.where(better, torch.full_like(best_size, step), best_size)
    members = order.T.clone()
    members[torch.arange(k)[None, :] > best_size[:, None]] = -1
    return best_p.float(), best_r.float(), best_f.float(), members


def interpret(latents: torch.Tensor, families: list[PropertyFamily]) -> Interpretation:
    """Best-F1 interpretation of every latent over every property of `families` (and unions of
    names where a family allows them). Ties keep the earlier family."""
    active = latents > 0
    d_sae = latents.shape[1]
    best_f1 = torch.full((d_sae,), -1.0)
    best_p = torch.zeros(d_sae)
    best_r = torch.zeros(d_sae)
    attr: list[str | None] = [None] * d_sae
    vals: list[tuple[int, ...]] = [()] * d_sae
    for fam in families:
        p, r, f, members = _family_scores(active, fam)
        better = f > best_f1
        best_f1 = torch.where(better, f, best_f1)
        best_p = torch.where(better, p, best_p)
        best_r = torch.where(better, r, best_r)
        rows = members.tolist()
        for j in torch.nonzero(better).flatten().tolist():
            attr[j], vals[j] = fam.name, tuple(v for v in rows[j] if v >= 0)
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
