"""Map external libraries' hook-point names to TransformerLens hook names.

External formats name where an SAE reads in their own vocabulary: sparsify uses Hugging Face
module paths ("layers.6", "gpt_neox.layers.6.mlp"), dictionary_learning a submodule name
("resid_post_layer_6"). Only unambiguous patterns are mapped; anything else stays ``None`` and
the harness asks the user for ``--hook``.
"""

from __future__ import annotations

import re

# The output of a whole transformer block is the residual stream after it.
_HF_BLOCK = re.compile(
    r"^(?:model\.|transformer\.|gpt_neox\.|base_model\.model\.)?(?:layers|h|blocks)\.(\d+)"
    r"(?:\.(mlp|attention|attn|self_attn))?$"
)
_HF_SUBMODULE_HOOK = {
    None: "hook_resid_post",
    "mlp": "hook_mlp_out",
    "attention": "hook_attn_out",
    "attn": "hook_attn_out",
    "self_attn": "hook_attn_out",
}
_DL_SUBMODULE = re.compile(r"^(resid_post|resid_pre|mlp_out|attn_out)_layer_(\d+)$")


def from_hf_module_path(name: str) -> str | None:
    """``layers.N`` -> ``blocks.N.hook_resid_post`` (``.mlp``/``.attention`` -> mlp/attn out)."""
    if name in ("embed_tokens", "model.embed_tokens", "wte", "transformer.wte"):
        return "hook_embed"
    match = _HF_BLOCK.match(name)
    if not match:
        return None
    layer, sub = match.groups()
    return f"blocks.{int(layer)}.{_HF_SUBMODULE_HOOK[sub]}"


def from_dictionary_learning(submodule_name: str | None) -> str | None:
    """``resid_post_layer_N`` -> ``blocks.N.hook_resid_post`` (also resid_pre/mlp_out/attn_out)."""
    if not submodule_name:
        return None
    match = _DL_SUBMODULE.match(submodule_name)
    if not match:
        return None
    site, layer = match.groups()
    return f"blocks.{int(layer)}.hook_{site}"
