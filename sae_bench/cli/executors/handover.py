"""The supervised dictionaries and fit activations of a sweep, built once and handed to every
worker, so that no worker repeats the fit prompts' forward pass or the fits.

`build` runs in one process with an evaluation context (reading the on-disk cache first, as any
run does); `hand_over` puts the values into a worker's context through its memo, under the
keys `EvalContext.dictionaries` and `EvalContext.fit_activations` read them from. A change of
those keys would make workers rebuild, which `CountingCache` makes visible (and the Ray tests
check it stays at zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from sae_bench.baselines.run import control_baselines
from sae_bench.baselines.schema import CrossSectionBaselines
from sae_bench.engine.cache import DictionaryCache
from sae_bench.engine.context import EvalContext
from sae_bench.models.nodes import CrossSection, Node
from sae_bench.truth.dictionaries import SupervisedDictionary


@dataclass(frozen=True)
class SharedFit:
    """Per node: {method: dictionary} and the fit activations [n_fit, width]."""

    dictionaries: dict[Node, dict[str, SupervisedDictionary]]
    activations: dict[Node, torch.Tensor]
    # The control baselines (issue 16) per cross-section: they depend on the context only, so
    # they are learned once here too, not once per worker.
    baselines: dict[tuple[str, tuple[Node, ...]], CrossSectionBaselines] = field(
        default_factory=dict)


def build(ctx: EvalContext, units: Sequence[Sequence[Node]],
          cross_sections: Sequence[CrossSection] = ()) -> SharedFit:
    """Dictionaries and fit activations for every node of `units` (each unit's nodes, in sweep
    order), from the context's cache or built.

    Requested unit by unit, as `evaluate_unit` requests them in a local run: fit activations
    collected for several nodes at once can differ in the last float digits from the same
    nodes collected alone (`collect.node_activations` computes fewer positions when the node
    is in the last layer it runs), so asking for all nodes at once would break byte-identity
    with the local run."""
    for nodes in units:
        ctx.dictionaries(nodes)
        ctx.fit_activations(nodes)
    unique = list(dict.fromkeys(n for nodes in units for n in nodes))
    dictionaries = ctx.dictionaries(unique)
    activations = ctx.fit_activations(unique)
    baselines = {(cs.name, cs.nodes): control_baselines(ctx, [cs])[0]
                 for cs in {(cs.name, cs.nodes): cs for cs in cross_sections}.values()}
    return SharedFit(dictionaries={n: dictionaries[n] for n in unique},
                     activations={n: activations[n] for n in unique}, baselines=baselines)


def hand_over(ctx: EvalContext, shared: SharedFit) -> None:
    """Make `ctx` use the shared values instead of reading its cache or fitting."""
    for node, dictionaries in shared.dictionaries.items():
        ctx.memo(("dict", node), lambda d=dictionaries: d)
    for node, acts in shared.activations.items():
        ctx.memo(("fit_act", node), lambda a=acts: a)
    for (name, nodes), baselines in shared.baselines.items():
        ctx.memo(("control_baselines", name, nodes), lambda b=baselines: b)


class CountingCache(DictionaryCache):
    """A `DictionaryCache` that counts the entries this process built (every fitted dictionary
    and every collected set of fit activations is `put` into the cache exactly once)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.built = 0

    def put(self, key: str, dictionary: SupervisedDictionary, **meta: str) -> None:
        self.built += 1
        super().put(key, dictionary, **meta)

    def put_activations(self, key: str, activations: torch.Tensor, **meta: str) -> None:
        self.built += 1
        super().put_activations(key, activations, **meta)
