"""Model registry: names -> TransformerLens `HookedTransformer`s, all loaded without network
unless the user asks for a hub model.

- ``gpt2``: GPT-2 Small from the Hugging Face hub, processed as in Makelov et al. (2024).
- ``gpt2-random``: a randomly initialised GPT-2-Small-shaped model with GPT-2's real tokenizer
  (shipped), for offline tests and benchmarks of shapes, hooks and speed. Not an IOI solver.
- ``ioi-tiny``: the small IOI-solving transformer this project trains and ships.
- ``ioi-circuit``: a second shipped model, trained on multi-sentence text where IOI shortcuts
  fail, with GPT-2's IOI circuit trained into five heads (model card:
  sae_bench/models/ioi_circuit/README.md).
- ``ioi-planted``: a transformer whose IOI circuit is set by hand (exact ground truth; model card:
  sae_bench/models/ioi_planted/README.md).

Weight processing (`sae_bench.models.processing`): ``gpt2`` loads with any TransformerLens
processing (default: the paper's); ``gpt2-random`` builds a raw (LN, random biases) model and
applies the requested processing, so raw-vs-processed behaviour can be tested offline.
``ioi-tiny`` ships only its processed weights (the paper's processing), so it offers nothing
else; so does ``ioi-circuit``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from typing import Any

from sae_bench.errors import UserError, unknown_name
from sae_bench.models import processing as proc


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


def load_gpt2_random(device: str = "cpu", seed: int = 0, processing: proc.Processing | None = None):
    """A random GPT-2-Small-shaped model.

    Without `processing`: the LNPre model of `gpt2_small_config` (the benchmarks' model). With
    one: a raw model with LayerNorm weights and every bias random (so each transform has something
    to change), processed by TransformerLens' own `process_weights_`.
    """
    import torch
    from transformer_lens import HookedTransformer

    if processing is None:
        model = HookedTransformer(
            gpt2_small_config(seed), tokenizer=gpt2_tokenizer(), move_to_device=False
        )
        return use_fused_gelu(model.to(device, print_details=False).eval())
    cfg = gpt2_small_config(seed)
    cfg.normalization_type = "LN"
    model = HookedTransformer(cfg, tokenizer=gpt2_tokenizer(), move_to_device=False)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith(".w"):  # LayerNorm scales around 1
                param.copy_(1 + 0.2 * torch.randn(param.shape, generator=gen))
            elif name.endswith(".b") or ".b_" in name or name.startswith("b_"):
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))
    # process_weights_ lacks fold_value_biases; this is what it wraps, with every flag.
    model.load_and_process_state_dict(
        {k: v.detach().clone() for k, v in model.state_dict().items()}, **processing
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


def load_gpt2(device: str = "cpu", processing: proc.Processing | None = None):
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    if not _gpt2_cached() and (offline or not _hub_reachable()):
        raise UserError(
            "GPT-2 Small's weights are not in the local Hugging Face cache and the hub cannot be "
            "reached; download them once on a connected machine, or use the offline model "
            "`--model ioi-tiny`."
        )
    from transformer_lens import HookedTransformer

    try:
        # Default: the paper's processing (it changes the basis of q/k/v/z, so l2-based steps
        # depend on it); an SAE that declares another gets the model it was trained on.
        flags = proc.PAPER if processing is None else processing
        model = HookedTransformer.from_pretrained_no_processing("gpt2", device=device, **flags)
    except OSError as exc:  # download interrupted, cache corrupt, ...
        raise UserError(
            f"could not load GPT-2 Small from the Hugging Face hub ({exc.__class__.__name__}); "
            "check the connection or use `--model ioi-tiny`."
        ) from None
    return use_fused_gelu(model.eval())


def _check_shipped_processing(name: str, processing: proc.Processing | None) -> None:
    """The shipped models exist only with the paper's processing applied."""
    if processing is not None and not proc.equivalent(processing, proc.PAPER):
        raise UserError(
            f"the SAE was trained on a model processed as {proc.describe(processing)}, but "
            f"{name} ships only weights processed as {proc.describe(proc.PAPER)}; use an SAE "
            f"trained on {name} as shipped (e.g. `sae-bench train-sae`)."
        )


def load_ioi_tiny(device: str = "cpu", processing: proc.Processing | None = None):
    from sae_bench.models.ioi_tiny.model import load

    _check_shipped_processing("ioi-tiny", processing)
    return load(device=device).eval()


def load_ioi_circuit(device: str = "cpu", processing: proc.Processing | None = None):
    from sae_bench.models.ioi_circuit.model import load

    _check_shipped_processing("ioi-circuit", processing)
    return load(device=device).eval()


def load_ioi_planted(device: str = "cpu", processing: proc.Processing | None = None):
    from sae_bench.models.ioi_planted.model import load

    # No LayerNorm and weights set in their final basis: there is nothing to process.
    if processing is not None:
        raise UserError(
            f"the SAE declares a model processed as {proc.describe(processing)}, but ioi-planted "
            "is built by hand and has no processed variants; use an SAE trained on it as built."
        )
    return load(device=device)


# What `--model` means when it is not given: the trained model with GPT-2's IOI circuit, so that
# a plain `sae-bench run` scores SAEs where the axes have something to find.
DEFAULT_MODEL = "ioi-circuit"

_MODELS: dict[str, Callable[..., Any]] = {
    "gpt2": load_gpt2,
    "gpt2-random": load_gpt2_random,
    "ioi-tiny": load_ioi_tiny,
    "ioi-circuit": load_ioi_circuit,
    "ioi-planted": load_ioi_planted,
}
# The processing each model is loaded with when no SAE asks for another (None: gpt2-random's
# benchmark model, which is built processed-shaped rather than processed).
DEFAULT_PROCESSING: dict[str, proc.Processing | None] = {
    "gpt2": proc.PAPER, "gpt2-random": None, "ioi-tiny": proc.PAPER, "ioi-circuit": proc.PAPER,
    "ioi-planted": None,
}


def load_model(name: str, device: str = "cpu", processing: proc.Processing | None = None):
    """Load a model by name; `processing` (TransformerLens flags) when an SAE declares one."""
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    if processing is None:
        return _MODELS[name](device=device)
    return _MODELS[name](device=device, processing=processing)
