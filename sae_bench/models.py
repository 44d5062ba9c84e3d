"""Model registry: names -> TransformerLens `HookedTransformer`s, all loaded without network
unless the user asks for a hub model.

- ``gpt2``: GPT-2 Small from the Hugging Face hub, processed as in Makelov et al. (2024).
- ``gpt2-random``: a randomly initialised GPT-2-Small-shaped model with GPT-2's real tokenizer
  (shipped), for offline tests and benchmarks of shapes, hooks and speed. Not an IOI solver.
- ``ioi-tiny``: the small IOI-solving transformer this project trains and ships.
- ``ioi-circuit``: a second shipped model, trained on multi-sentence text where IOI shortcuts
  fail (model card: sae_bench/ioi_circuit/README.md).
"""

from __future__ import annotations

import os
from importlib import resources

from sae_bench.errors import UserError, unknown_name


def gpt2_tokenizer():
    """GPT-2's real BPE tokenizer from the vocabulary shipped in the package (offline)."""
    from transformers import GPT2TokenizerFast

    folder = resources.files("sae_bench") / "assets" / "gpt2_tokenizer"
    with resources.as_file(folder) as path:
        return GPT2TokenizerFast.from_pretrained(str(path))


def gpt2_small_config(seed: int = 0):
    from transformer_lens import HookedTransformerConfig

    return HookedTransformerConfig(
        n_layers=12,
        d_model=768,
        n_heads=12,
        d_head=64,
        d_mlp=3072,
        d_vocab=50257,
        n_ctx=1024,
        act_fn="gelu_new",
        normalization_type="LNPre",  # as after fold_ln
        default_prepend_bos=True,
        seed=seed,
    )


def _gelu_tanh(x):
    import torch.nn.functional as F

    return F.gelu(x, approximate="tanh")


def use_fused_gelu(model):
    """Swap TransformerLens' `gelu_new` (six elementwise kernels) for PyTorch's fused tanh GELU.

    The same function: both are within 4.4e-7 of a float64 evaluation of gelu_new on N(0, 3²)
    inputs, and GPT-2-shaped logits agree within 1e-4 (tests/test_gpt2_nodes.py); the fused
    kernel is about 4× faster, and gelu_new was a third of a GPT-2 forward pass on CPU.
    """
    if model.cfg.act_fn == "gelu_new":
        for block in model.blocks:
            block.mlp.act_fn = _gelu_tanh
    return model


def load_gpt2_random(device: str = "cpu", seed: int = 0):
    from transformer_lens import HookedTransformer

    model = HookedTransformer(
        gpt2_small_config(seed), tokenizer=gpt2_tokenizer(), move_to_device=False
    )
    return use_fused_gelu(model.to(device, print_details=False).eval())


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick probe so an offline machine fails in seconds, not after the hub client's retries."""
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _gpt2_cached() -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache("gpt2", "config.json"), str)


def load_gpt2(device: str = "cpu"):
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    if not _gpt2_cached() and (offline or not _hub_reachable()):
        raise UserError(
            "GPT-2 Small's weights are not in the local Hugging Face cache and the hub cannot be "
            "reached; download them once on a connected machine, or use the offline model "
            "`--model ioi-tiny`."
        )
    from transformer_lens import HookedTransformer

    try:
        # The paper's processing: it changes the basis of q/k/v/z, so l2-based steps depend on it.
        model = HookedTransformer.from_pretrained(
            "gpt2",
            device=device,
            fold_ln=True,
            center_writing_weights=True,
            center_unembed=True,
            refactor_factored_attn_matrices=True,
        )
    except OSError as exc:  # download interrupted, cache corrupt, ...
        raise UserError(
            f"could not load GPT-2 Small from the Hugging Face hub ({exc.__class__.__name__}); "
            "check the connection or use `--model ioi-tiny`."
        ) from None
    return use_fused_gelu(model.eval())


def load_ioi_tiny(device: str = "cpu"):
    from sae_bench.ioi_tiny.model import load

    return load(device=device).eval()


def load_ioi_circuit(device: str = "cpu"):
    from sae_bench.ioi_circuit.model import load

    return load(device=device).eval()


_MODELS = {
    "gpt2": load_gpt2,
    "gpt2-random": load_gpt2_random,
    "ioi-tiny": load_ioi_tiny,
    "ioi-circuit": load_ioi_circuit,
}


def load_model(name: str, device: str = "cpu"):
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    return _MODELS[name](device=device)
