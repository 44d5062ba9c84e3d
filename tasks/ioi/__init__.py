"""The indirect-object-identification (IOI) task. Task card: tasks/ioi/README.md."""

from __future__ import annotations

from sae_bench.axes.interpretability import PropertyFamily
from sae_bench.models.nodes import CrossSection, Node
from sae_bench.tasks.base import TaskData
from sae_bench.tasks.ioi.circuits import cross_sections_for
from sae_bench.tasks.ioi.dataset import EDITABLE, ROLES, build
from sae_bench.tasks.ioi.properties import properties


class IOITask:
    name = "ioi"
    # Bump when the prompt distribution, the attributes or the metric maths change.
    version = "1.1.0"
    roles = ROLES
    attributes = EDITABLE
    default_n = {"fit": 20_000, "eval": 5_000}

    def build(
        self, model, *, n: int, seed: int, split: str = "eval", counterfactuals: bool = True
    ) -> TaskData:
        return build(
            model,
            n=n,
            seed=seed,
            split=split,
            task=self.name,
            version=self.version,
            counterfactuals=counterfactuals,
        )

    def properties(self, data: TaskData) -> list[PropertyFamily]:
        return properties(data)

    def cross_sections(self, model_name: str) -> list[CrossSection]:
        return cross_sections_for(model_name)

    def nodes(self, model_name: str, model=None) -> list[Node]:
        """Cross-section nodes, then residual-stream and attention-output hooks at every layer
        and role (these exist in every TransformerLens model)."""
        seen: dict[Node, None] = {}
        for cs in self.cross_sections(model_name):
            seen.update(dict.fromkeys(cs.nodes))
        if model is not None:
            for layer in range(model.cfg.n_layers):
                for hook in ("hook_resid_pre", "hook_attn_out", "hook_resid_post"):
                    for role in self.roles:
                        seen[Node(f"blocks.{layer}.{hook}", role)] = None
        return list(seen)
