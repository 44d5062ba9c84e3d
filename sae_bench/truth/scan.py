"""Activation-patching scan: where does each attribute causally matter in a model?

For every attribute's counterfactual and every candidate node, patch the counterfactual prompt's
activation into the base run and measure (i) how often the top-1 token changes and (ii) the mean
change of the base logit difference, as a share of the clean LD. This is the evidence used to pick
a model's IOI nodes and cross-sections (tasks/ioi/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sae_bench.engine.patching import collect_activations
from sae_bench.engine.runner import InterventionRunner
from sae_bench.models.nodes import Node


@dataclass(frozen=True)
class ScanRow:
    node: str
    attribute: str
    top1_changed: float  # share of prompts whose top-1 token changes
    ld_drop: float  # (LD_clean - LD_patched) / LD_clean, means over prompts


def candidate_nodes(model, roles) -> list[Node]:
    """The embeddings (`blocks.0.hook_resid_pre`), every head's output (hook_z) and every
    layer's residual stream, at every role."""
    nodes = [Node("blocks.0.hook_resid_pre", role) for role in roles]
    for layer in range(model.cfg.n_layers):
        for role in roles:
            hook = f"blocks.{layer}.attn.hook_z"
            nodes += [Node(hook, role, h) for h in range(model.cfg.n_heads)]
            nodes.append(Node(f"blocks.{layer}.hook_resid_post", role))
    return nodes


@torch.no_grad()
def scan(model, data, nodes, attributes, progress=None) -> list[ScanRow]:
    # One clean pass, then each single-node patch recomputes only the layers and positions it
    # can change.
    runner = InterventionRunner(model, data.tokens, data.positions, data.answer_ids,
                                data.distractor_ids)
    clean = runner.clean()
    assert clean.argmax is not None  # the clean run always computes it
    ld_clean = float(clean.logit_diff.mean())
    rows = []
    for attribute in attributes:
        cf = data.counterfactuals[attribute]
        cf_acts = collect_activations(model, cf.tokens, cf.positions, nodes)
        items = nodes if progress is None else progress.bar(nodes, desc=f"scan {attribute}")
        for node in items:
            out = runner.run({node: cf_acts[node]}, argmax=True)
            assert out.argmax is not None
            rows.append(ScanRow(
                node=node.name,
                attribute=attribute,
                top1_changed=float((out.argmax != clean.argmax).float().mean()),
                ld_drop=(ld_clean - float(out.logit_diff.mean())) / ld_clean,
            ))
    return rows
