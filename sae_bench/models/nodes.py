"""Nodes (hook + optional head + role position) and cross-sections (nodes patched together).

Spec syntax, used on the command line and in files: ``HOOK[:HEAD]@ROLE``, e.g.
``blocks.9.attn.hook_q:9@END`` or ``blocks.3.hook_resid_post@S2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sae_bench.errors import UserError

# Hooks whose activations are [batch, pos, n_heads, d_head]: a head may be selected.
HEAD_HOOKS = ("hook_q", "hook_k", "hook_v", "hook_z", "hook_result")
_SPEC = re.compile(r"^(?P<hook>[A-Za-z0-9_.]+?)(?::(?P<head>\d+))?@(?P<role>[A-Za-z0-9_+]+)$")


@dataclass(frozen=True, order=True)
class Node:
    hook: str
    position: str
    head: int | None = None

    @property
    def name(self) -> str:
        head = f":{self.head}" if self.head is not None else ""
        return f"{self.hook}{head}@{self.position}"

    def __str__(self) -> str:
        return self.name

    @property
    def layer(self) -> int:
        m = re.match(r"blocks\.(\d+)\.", self.hook)
        if m:
            return int(m.group(1))
        if self.hook.startswith(("hook_embed", "hook_pos_embed")):
            return 0
        return 10**6  # ln_final etc.: after every block

    @property
    def is_head_hook(self) -> bool:
        return self.hook.rsplit(".", 1)[-1] in HEAD_HOOKS

    @classmethod
    def parse(cls, spec: str) -> Node:
        m = _SPEC.match(spec.strip())
        if not m:
            raise UserError(
                f"cannot parse node {spec!r}: write HOOK[:HEAD]@ROLE, "
                "e.g. 'blocks.9.attn.hook_z:9@END' or 'blocks.3.hook_resid_post@S2'."
            )
        head = m.group("head")
        node = cls(hook=m.group("hook"), position=m.group("role"), head=int(head) if head else None)
        if node.head is not None and not node.is_head_hook:
            raise UserError(
                f"node {spec!r} names a head but {node.hook!r} has no head axis; "
                f"heads exist only on {', '.join(HEAD_HOOKS)}."
            )
        return node


@dataclass(frozen=True)
class CrossSection:
    """Nodes that are patched all at once, and the attributes an edit there is meant to change."""

    name: str
    nodes: tuple[Node, ...]
    attributes: tuple[str, ...]
    description: str = ""


# Hooks that hold one d_model vector per token ([batch, pos, d_model]). Anything else that is not
# a head hook or an MLP's hidden layer (attention scores and patterns, LayerNorm scales, the
# split q/k/v inputs) is not a per-token vector an SAE can read.
_D_MODEL_HOOKS = ("hook_embed", "hook_pos_embed", "hook_resid_pre", "hook_resid_mid",
                  "hook_resid_post", "hook_attn_out", "hook_mlp_out", "hook_mlp_in",
                  "hook_normalized")
_MLP_HOOKS = ("hook_pre", "hook_post", "hook_pre_linear")


def node_width(model, node: Node) -> int:
    """Width of the vector a node holds for one prompt (validates the hook name)."""
    validate_hook(model, node)
    cfg = model.cfg
    leaf = node.hook.rsplit(".", 1)[-1]
    if node.is_head_hook:
        per_head = cfg.d_model if leaf == "hook_result" else cfg.d_head
        return per_head if node.head is not None else per_head * cfg.n_heads
    if leaf in _MLP_HOOKS and ".mlp." in node.hook:
        return cfg.d_mlp
    if leaf in _D_MODEL_HOOKS:
        return cfg.d_model
    raise UserError(
        f"hook {node.hook!r} does not hold one vector per token (attention scores and patterns, "
        "LayerNorm scales and split q/k/v inputs have other shapes); use a residual, attention-"
        "or MLP-output, MLP-hidden or per-head hook (`sae-bench nodes` lists them)."
    )


def validate_hook(model, node: Node) -> None:
    hooks = model.hook_dict
    if node.hook not in hooks:
        import difflib

        close = difflib.get_close_matches(node.hook, list(hooks), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UserError(
            f"unknown hook {node.hook!r} for this model.{hint} "
            "Run `sae-bench nodes --task TASK --model MODEL` to list hooks and nodes."
        )
    if node.head is not None and not node.is_head_hook:
        raise UserError(
            f"node {node.name} names head {node.head} but {node.hook!r} has no head axis; drop "
            f"the head, or use a per-head hook ({', '.join(HEAD_HOOKS)})."
        )
    if node.head is not None and not 0 <= node.head < model.cfg.n_heads:
        raise UserError(
            f"node {node.name}: head {node.head} out of range; the model has "
            f"{model.cfg.n_heads} heads per layer (0..{model.cfg.n_heads - 1})."
        )
    if node.hook.endswith("hook_result") and not model.cfg.use_attn_result:
        raise UserError(
            f"node {node.name} needs hook_result, which this model does not compute; "
            "use hook_z for per-head outputs."
        )
