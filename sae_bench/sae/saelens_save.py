"""Write an `SAE` as a SAELens 6 inference folder that ``sae_lens.SAE.load_from_disk`` loads.

What SAELens needs, and why each choice is exact (tests/test_interop.py loads every architecture
with the real library and compares encode/decode):

- ``batchtopk`` is written as SAELens' own inference form of BatchTopK, ``jumprelu`` with the
  learned threshold (SAELens has no inference class named batchtopk: loading one raises
  ``KeyError: 'batchtopk'``). Our batchtopk is ``a·1[a > θ]`` with ``a = ReLU(pre)`` and SAELens'
  jumprelu is ``ReLU(pre)·1[pre > θ]``: equal for θ ≥ 0, and for θ < 0 both are ``ReLU(pre)``,
  which jumprelu gives with θ = 0; so the threshold is written as ``max(θ, 0)``.
- ``sae_lens_version`` and ``reshape_activations`` are written: without them SAELens treats the
  folder as pre-6.0 and turns on hook_z reshaping for every ``hook_z`` SAE, which breaks a
  per-head SAE (one head's 64-d vector is not [n_heads, d_head]). ``hook_z`` reshaping is on only
  for a whole-layer z SAE (no head), which is what it is for.
- SAELens stores no activation scale, so ``input_scale`` s is folded into the weights:
  (x·s − b_dec)·W_enc = (x − b_dec/s)·(s·W_enc) and (f·W_dec + b_dec)/s = f·(W_dec/s) + b_dec/s.
- The model processing the SAE was trained on goes to ``metadata.model_from_pretrained_kwargs``,
  the key SAELens reads to load the model the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sae_bench.models import processing
from sae_bench.sae.base import SAE
from sae_bench.sae.saelens import CFG_FILE, WEIGHTS_FILE

# The cfg.json layout written here is SAELens 6's (checked with 6.54); SAELens reads the version
# only to decide whether to apply its pre-6.0 defaults.
SAELENS_LAYOUT_VERSION = "6.0.0"
_ARCH_OUT = {"relu": "standard", "gated": "gated", "topk": "topk", "jumprelu": "jumprelu",
             "batchtopk": "jumprelu"}


def saelens_folder(sae: SAE, *, model_name: str | None = None) -> tuple[dict[str, Any],
                                                                          dict[str, torch.Tensor]]:
    """``(cfg.json dict, state dict)`` of the SAELens form of `sae`."""
    s = float(sae.input_scale)
    tensors: dict[str, torch.Tensor] = {
        "W_enc": sae.W_enc * s, "W_dec": sae.W_dec / s, "b_dec": sae.b_dec / s,
    }
    if sae.architecture == "gated":
        assert sae.r_mag is not None and sae.b_mag is not None  # validated by the contract
        tensors.update(b_gate=sae.b_enc, b_mag=sae.b_mag, r_mag=sae.r_mag)
    else:
        tensors["b_enc"] = sae.b_enc
    if sae.architecture in ("jumprelu", "batchtopk"):
        assert sae.threshold is not None
        theta = sae.threshold
        tensors["threshold"] = theta.clamp(min=0) if sae.architecture == "batchtopk" else theta
    hook_z_layer = bool(sae.hook_name and sae.hook_name.endswith("hook_z") and sae.head is None)
    metadata: dict[str, Any] = {
        "sae_lens_version": SAELENS_LAYOUT_VERSION,
        "hook_name": sae.hook_name,
        "hook_head_index": sae.head,
        "prepend_bos": True,
        "exported_by": "principled-sae-bench",
        "source_architecture": sae.architecture,
    }
    if model_name is not None:
        metadata["model_name"] = model_name
    declared = processing.declared(sae.metadata)
    if declared is not None:
        # from_pretrained_no_processing(**kwargs) reproduces exactly these flags.
        metadata["model_from_pretrained_kwargs"] = {f: v for f, v in declared.items() if v}
    if sae.position is not None:
        metadata["sae_bench_position"] = sae.position
    cfg: dict[str, Any] = {
        "architecture": _ARCH_OUT[sae.architecture],
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": bool(sae.apply_b_dec_to_input),
        "normalize_activations": "none",
        "reshape_activations": "hook_z" if hook_z_layer else "none",
        "metadata": metadata,
    }
    if sae.architecture == "topk":
        cfg["k"] = int(sae.k)  # type: ignore[arg-type]  # validated: an int for topk
        cfg["rescale_acts_by_decoder_norm"] = False
    elif sae.architecture == "batchtopk" and sae.k is not None:
        metadata["batchtopk_k"] = float(sae.k)  # training-time k; inference uses the threshold
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in tensors.items()}
    return cfg, state


def save_saelens(sae: SAE, folder: Path | str, *, model_name: str | None = None) -> Path:
    """Write `sae` as a SAELens folder (cfg.json + sae_weights.safetensors), atomically per file."""
    from safetensors.torch import save

    from sae_bench.fileio.atomic import write_bytes_atomic, write_text_atomic

    cfg, state = saelens_folder(sae, model_name=model_name)
    folder = Path(folder)
    write_bytes_atomic(folder / WEIGHTS_FILE, save(state))
    write_text_atomic(folder / CFG_FILE, json.dumps(cfg, indent=2) + "\n")
    return folder
