"""The binary properties of IOI prompts that latents are interpreted against (paper appendix
A.12; METHOD §4): each attribute value, name∧Pos conjunctions, "the name is in the sentence" (as
IO or S), and the name at the first / second name position, with unions of names."""

from __future__ import annotations

import torch

from sae_bench.axes.interpretability import PropertyFamily
from sae_bench.tasks.base import TaskData


def _conjunction(name: str, names: tuple[str, ...], name_labels: torch.Tensor,
                 pos_values: tuple[str, ...], pos: torch.Tensor) -> PropertyFamily:
    values = tuple(f"{n}&{p}" for n in names for p in pos_values)
    labels = name_labels * len(pos_values) + pos
    return PropertyFamily.of_attribute(name, values, labels, unions=True)


def properties(data: TaskData) -> list[PropertyFamily]:
    """Property families of `data`'s prompts, attribute values first (so a latent whose best F1 is
    tied between "IO is Mary" and a richer property keeps the plain attribute reading)."""
    io, s, pos = (data.attributes[k] for k in ("IO", "S", "Pos"))
    names = io.values
    abb = pos.labels == 0  # ABB: IO is the first name
    first = torch.where(abb, io.labels, s.labels)
    second = torch.where(abb, s.labels, io.labels)
    in_sentence = (torch.nn.functional.one_hot(io.labels, len(names))
                   | torch.nn.functional.one_hot(s.labels, len(names))).bool()
    return [
        PropertyFamily.of_attribute("IO", names, io.labels, unions=True),
        PropertyFamily.of_attribute("S", names, s.labels, unions=True),
        PropertyFamily.of_attribute("Pos", pos.values, pos.labels),
        _conjunction("IO&Pos", names, io.labels, pos.values, pos.labels),
        _conjunction("S&Pos", names, s.labels, pos.values, pos.labels),
        PropertyFamily("name_in_sentence", names, in_sentence, exclusive=False, unions=True),
        PropertyFamily.of_attribute("first_name", names, first, unions=True),
        PropertyFamily.of_attribute("second_name", names, second, unions=True),
    ]
