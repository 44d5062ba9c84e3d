"""The task contract: what a task module hands to the harness.

A task builds a labelled prompt distribution (`TaskData`) for a model's tokenizer, and names the
nodes and cross-sections where its attributes live for each supported model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from sae_bench.axes.interpretability import PropertyFamily
    from sae_bench.models.nodes import CrossSection, Node


@dataclass(frozen=True)
class Attribute:
    """A categorical attribute: `labels[p]` indexes into `values` for prompt p."""

    name: str
    values: tuple[str, ...]
    labels: torch.Tensor  # [n] long

    def value_of(self, p: int) -> str:
        return self.values[int(self.labels[p])]


@dataclass(frozen=True)
class Counterfactual:
    """Prompts that differ from the base prompts in exactly one attribute (`edited`).

    `source`/`target` are value indices of the edited attribute before and after the edit.
    Positions are the counterfactual prompts' own role positions (a Pos flip moves IO and S1).
    """

    edited: str
    tokens: torch.Tensor  # [n, seq] long
    positions: dict[str, torch.Tensor]  # role -> [n] long
    source: torch.Tensor  # [n] long
    target: torch.Tensor  # [n] long
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class TaskData:
    """A batch of equal-length prompts with labels, answers, role positions and counterfactuals.

    The logit difference is logit(answer) - logit(distractor) at the END position.
    """

    task: str
    version: str
    split: str
    seed: int
    prompts: tuple[str, ...]
    tokens: torch.Tensor  # [n, seq] long
    answer_ids: torch.Tensor  # [n] long
    distractor_ids: torch.Tensor  # [n] long
    attributes: dict[str, Attribute]
    positions: dict[str, torch.Tensor]  # role -> [n] long
    counterfactuals: dict[str, Counterfactual] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def labels(self) -> dict[str, torch.Tensor]:
        return {name: a.labels for name, a in self.attributes.items()}

    def subset(self, idx: torch.Tensor) -> TaskData:
        """The prompts at `idx` (long indices), with everything indexed consistently."""
        ids = idx.tolist()
        return TaskData(
            task=self.task,
            version=self.version,
            split=self.split,
            seed=self.seed,
            prompts=tuple(self.prompts[i] for i in ids),
            tokens=self.tokens[idx],
            answer_ids=self.answer_ids[idx],
            distractor_ids=self.distractor_ids[idx],
            attributes={
                k: Attribute(a.name, a.values, a.labels[idx]) for k, a in self.attributes.items()
            },
            positions={k: v[idx] for k, v in self.positions.items()},
            counterfactuals={
                k: Counterfactual(
                    edited=c.edited,
                    tokens=c.tokens[idx],
                    positions={r: v[idx] for r, v in c.positions.items()},
                    source=c.source[idx],
                    target=c.target[idx],
                    prompts=tuple(c.prompts[i] for i in ids),
                )
                for k, c in self.counterfactuals.items()
            },
        )


class Task(Protocol):
    """What every task module provides (see `sae_bench.tasks.registry`)."""

    name: str
    version: str
    roles: tuple[str, ...]
    attributes: tuple[str, ...]
    default_n: dict[str, int]

    def build(
        self, model, *, n: int, seed: int, split: str = "eval", counterfactuals: bool = True
    ) -> TaskData: ...

    def properties(self, data: TaskData) -> list[PropertyFamily]:
        """Binary properties of the prompts that latents are interpreted against, attribute
        values first."""
        ...

    def nodes(self, model_name: str, model=None) -> list[Node]: ...

    def cross_sections(self, model_name: str) -> list[CrossSection]: ...
