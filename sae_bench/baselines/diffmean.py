"""DiffMean: the supervised difference of means, scaled (METHOD §3's supervised edit is scale 1).

For attribute i moved from value v to v′ at a node: a + s·(u_{i,v′} − u_{i,v}) with u the
`mean` dictionary's features (class mean minus grand mean), so u_{i,v′} − u_{i,v} is the
difference of the two classes' mean activations. Names are not binary: the vector depends on
the source and target names (one difference vector per value pair), which is why no single
fixed vector or scalar can do a name swap. The scale s is chosen on fit prompts only.
"""

from __future__ import annotations

import torch

from sae_bench.baselines.editset import PREFER_S, EditSet
from sae_bench.models.nodes import Node
from sae_bench.truth.dictionaries import SupervisedDictionary

# Scales tried on the fit prompts (**choice**): 1 is the supervised edit; larger ones overshoot a
# feature that the model reads with a margin, smaller ones test whether less suffices.
SCALES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


def diffmean_edit(edit_set: EditSet, dictionaries: dict[Node, SupervisedDictionary],
                  scale: float) -> dict[Node, torch.Tensor]:
    """{node: [n, width]} edited activations a + scale·(u_target − u_source)."""
    out = {}
    io, s = edit_set.source, edit_set.target_value
    for node in edit_set.nodes:
        d, a = dictionaries[node], edit_set.acts[node]
        if edit_set.attribute == PREFER_S:  # the two names swap roles (IO and S share values)
            delta = d.edit(d.edit(a, "IO", io, s), "S", s, io) - a
        else:
            delta = d.edit(a, edit_set.attribute, edit_set.source, edit_set.target_value) - a
        out[node] = a + scale * delta
    return out


def choose_scale(fit_set: EditSet, dictionaries: dict[Node, SupervisedDictionary],
                 scales: tuple[float, ...] = SCALES) -> tuple[float, dict[float, float]]:
    """The scale with the best edit accuracy on the fit prompts (ties: the one closest to 1,
    then the smaller), and the accuracy at every scale."""
    accuracy = {}
    for s in scales:
        top = fit_set.runner.run(diffmean_edit(fit_set, dictionaries, s)).argmax
        assert top is not None
        accuracy[s] = float((top == fit_set.target).float().mean())
    best = max(scales, key=lambda s: (accuracy[s], -abs(s - 1.0), -s))
    return best, accuracy
