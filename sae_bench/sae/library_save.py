"""Write an `SAE` in the formats of dictionary_learning (``ae.pt`` + ``config.json``) and
EleutherAI sparsify (``cfg.json`` + ``sae.safetensors``), for the libraries' own loaders.

Both libraries encode raw activations with one fixed centring convention, so the contract's
``input_scale`` s and ``apply_b_dec_to_input`` are folded into the weights, exactly:
``(x·s − b)·W + c = (x − b/s)·(s·W) + c`` and ``(x − b')·W' + c = x·W' + (c − b'·W')``.
tests/test_interop_dl_sparsify.py loads every file written here with the library and compares
encode/decode. Where the hook has no name in the library's vocabulary (a per-head hook_z), the
TransformerLens hook and head are kept in extra config keys that the libraries ignore and our
loaders read.

- dictionary_learning: relu -> ``AutoEncoder``, gated -> ``GatedAutoEncoder``, topk ->
  ``AutoEncoderTopK``, batchtopk -> ``BatchTopKSAE`` (one scalar threshold: a per-latent
  threshold is refused), jumprelu -> ``JumpReluAutoEncoder`` (no input centring, as the library
  loads it).
- sparsify: topk only (sparsify's SparseCoder is a TopK SAE).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sae_bench.errors import UserError
from sae_bench.sae.base import SAE

HOOK_KEY, HEAD_KEY = "sae_bench_hook_name", "sae_bench_head"
PROCESSING_KEY = "sae_bench_model_processing"
_DL_SITE = re.compile(r"^blocks\.(\d+)\.hook_(resid_post|resid_pre|mlp_out|attn_out)$")
_DL_CLASS = {"relu": "AutoEncoder", "gated": "GatedAutoEncoder", "topk": "AutoEncoderTopK",
             "batchtopk": "BatchTopKSAE", "jumprelu": "JumpReluAutoEncoder"}


def folded(sae: SAE, *, centred: bool) -> dict[str, Tensor]:
    """Weights acting on raw activations: pre = (x − b_dec)·W_enc + b_enc if `centred`, else
    x·W_enc + b_enc; reconstruction f·W_dec + b_dec. Gated ``b_mag`` shifts with b_enc."""
    s = float(sae.input_scale)
    W_enc, W_dec, b_dec = sae.W_enc * s, sae.W_dec / s, sae.b_dec / s
    shift = torch.zeros_like(sae.b_enc)
    if sae.apply_b_dec_to_input and not centred:
        shift = -(b_dec @ W_enc)
    elif centred and not sae.apply_b_dec_to_input:
        shift = b_dec @ W_enc
    out = {"W_enc": W_enc, "W_dec": W_dec, "b_dec": b_dec, "b_enc": sae.b_enc + shift}
    if sae.architecture == "gated":
        assert sae.r_mag is not None and sae.b_mag is not None
        out.update(r_mag=sae.r_mag, b_mag=sae.b_mag + shift * sae.r_mag.exp())
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}


def _where(sae: SAE) -> dict[str, Any]:
    """Extra config keys: where the SAE hooks, and the processing of its model if declared."""
    out: dict[str, Any] = {HOOK_KEY: sae.hook_name, HEAD_KEY: sae.head}
    if sae.metadata.get("model_processing") is not None:
        out[PROCESSING_KEY] = dict(sae.metadata["model_processing"])
    return out


def _int_k(sae: SAE, library: str) -> int:
    if sae.k is None or float(sae.k) != int(sae.k):
        raise UserError(f"{library} needs an integer k for a {sae.architecture} SAE; this one "
                        f"has k={sae.k!r}. Set k when training it.")
    return int(sae.k)


def save_dictionary_learning(sae: SAE, folder: Path | str, *, lm_name: str | None = None
                             ) -> Path:
    """Write ``ae.pt`` + ``config.json`` as dictionary_learning's trainSAE does."""
    from sae_bench.fileio.atomic import write_bytes_atomic, write_text_atomic

    arch = sae.architecture
    w = folded(sae, centred=arch != "jumprelu")
    state: dict[str, Tensor]
    if arch == "relu":
        state = {"encoder.weight": w["W_enc"].T, "encoder.bias": w["b_enc"],
                 "decoder.weight": w["W_dec"].T, "bias": w["b_dec"]}
    elif arch == "gated":
        state = {"encoder.weight": w["W_enc"].T, "gate_bias": w["b_enc"], "r_mag": w["r_mag"],
                 "mag_bias": w["b_mag"], "decoder.weight": w["W_dec"].T,
                 "decoder_bias": w["b_dec"]}
    elif arch in ("topk", "batchtopk"):
        theta = torch.tensor(-1.0)  # AutoEncoderTopK's "not used" value
        if arch == "batchtopk":
            assert sae.threshold is not None
            if not bool((sae.threshold == sae.threshold[0]).all()):
                raise UserError("dictionary_learning's BatchTopKSAE has one threshold for all "
                                "latents; this SAE has one per latent. Export it to SAELens.")
            theta = sae.threshold[0].detach().clamp(min=0).to("cpu", torch.float32)
        state = {"encoder.weight": w["W_enc"].T, "encoder.bias": w["b_enc"],
                 "decoder.weight": w["W_dec"].T, "b_dec": w["b_dec"],
                 "k": torch.tensor(_int_k(sae, "dictionary_learning"), dtype=torch.int),
                 "threshold": theta}
    else:  # jumprelu
        assert sae.threshold is not None
        state = {"W_enc": w["W_enc"], "b_enc": w["b_enc"], "W_dec": w["W_dec"],
                 "b_dec": w["b_dec"], "threshold": sae.threshold.detach().float().cpu()}
    site = _DL_SITE.match(sae.hook_name or "")
    trainer: dict[str, Any] = {
        "dict_class": _DL_CLASS[arch], "activation_dim": sae.d_in, "dict_size": sae.d_sae,
        "lm_name": lm_name, "layer": int(site.group(1)) if site else None,
        "submodule_name": f"{site.group(2)}_layer_{site.group(1)}" if site else None,
        **_where(sae),
    }
    if arch in ("topk", "batchtopk"):
        trainer["k"] = int(state["k"])
    buffer = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in state.items()}, buffer)
    folder = Path(folder)
    write_bytes_atomic(folder / "ae.pt", buffer.getvalue())
    write_text_atomic(folder / "config.json", json.dumps({"trainer": trainer}, indent=4) + "\n")
    return folder


def save_sparsify(sae: SAE, folder: Path | str) -> Path:
    """Write ``cfg.json`` + ``sae.safetensors`` as ``SparseCoder.save_to_disk`` does."""
    from safetensors.torch import save

    from sae_bench.fileio.atomic import write_bytes_atomic, write_text_atomic

    if sae.architecture != "topk":
        raise UserError(f"sparsify stores TopK SAEs only; this one is {sae.architecture}. "
                        "Export it to SAELens or dictionary_learning instead.")
    w = folded(sae, centred=True)
    state = {"encoder.weight": w["W_enc"].T.contiguous(), "encoder.bias": w["b_enc"],
             "W_dec": w["W_dec"], "b_dec": w["b_dec"]}
    cfg = {"activation": "topk", "expansion_factor": max(1, sae.d_sae // sae.d_in),
           "normalize_decoder": False, "num_latents": sae.d_sae,
           "k": _int_k(sae, "sparsify"), "multi_topk": False, "skip_connection": False,
           "transcode": False, "d_in": sae.d_in, **_where(sae)}
    folder = Path(folder)
    write_bytes_atomic(folder / "sae.safetensors", save(state))
    write_text_atomic(folder / "cfg.json", json.dumps(cfg) + "\n")
    return folder
