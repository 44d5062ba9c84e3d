"""Which SAEs of a sweep can share one evaluation context, and how to split them among workers.

Two SAEs share everything a context computes (prompts, clean run, counterfactual activations,
supervised dictionaries, fit activations) when they agree on model, task, seed and prompt
counts; SAEs that also sit at the same nodes share the node-level pieces (dictionaries, fit
activations, patched runs). A worker's share is therefore cut from the sweep ordered by group,
so that it spans as few groups, and needs as few nodes' dictionaries, as possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class GroupKey:
    model: str
    task: str
    seed: int
    n_fit: int
    n_eval: int
    nodes: tuple[str, ...]  # sorted node names (HOOK[:HEAD]@ROLE) the SAE is scored at


@dataclass(frozen=True)
class Group:
    key: GroupKey
    members: tuple[int, ...]  # indices into the sweep, in sweep order


def group(keys: Sequence[GroupKey]) -> list[Group]:
    """The sweep's groups, in order of first appearance; members keep their sweep order."""
    members: dict[GroupKey, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    return [Group(key, tuple(idx)) for key, idx in members.items()]


def shares(groups: Sequence[Group], n_workers: int) -> list[tuple[int, ...]]:
    """Split the sweep into at most `n_workers` non-empty shares whose sizes differ by at most
    one (SAEs of one sweep cost about the same), cut from the group-ordered list so that a
    share spans as few groups as the sizes allow."""
    if n_workers < 1:
        raise ValueError(f"n_workers must be at least 1, got {n_workers}")
    ordered = [index for g in groups for index in g.members]
    n = min(n_workers, len(ordered))
    base, extra = divmod(len(ordered), n) if n else (0, 0)
    out: list[tuple[int, ...]] = []
    start = 0
    for w in range(n):
        size = base + (1 if w < extra else 0)
        out.append(tuple(ordered[start:start + size]))
        start += size
    return out
