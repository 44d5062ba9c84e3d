"""SAELens folders: ``cfg.json`` + ``sae_weights.safetensors`` (SAELens 3.x-6.x layouts).

Mapping decisions (checked against SAELens' sae.py, *_sae.py and pretrained_sae_loaders.py):

- architecture ``standard`` -> relu; ``standard`` with ``activation_fn[_str] == "topk"`` (pre-6.0
  configs) -> topk with ``activation_fn_kwargs.k``; ``gated``/``jumprelu``/``topk`` as named;
  ``batchtopk`` (a training checkpoint; SAELens saves inference BatchTopK as jumprelu) ->
  batchtopk with its scalar ``topk_threshold``.
- hook name and head: ``metadata.hook_name`` / ``metadata.hook_head_index`` (6.x), else the
  top-level ``hook_name`` / ``hook_point`` and ``hook_head_index`` / ``hook_point_head_index``.
- ``apply_b_dec_to_input`` defaults to true, as in SAELens.
- ``normalize_activations``: ``none`` (or false/null) -> input_scale 1; ``expected_average_only_in``
  (or true) means the weights expect ``x * s`` with a dataset constant s that SAELens does *not*
  store in the folder, so it must come from ``norm_scaling_factor`` in cfg.json or the caller;
  ``constant_norm_rescale`` / ``layer_norm`` are per-input normalisations the contract cannot
  express and are refused.
- ``scaling_factor`` (old "finetuning scaling factor", multiplies latents before W_dec) is folded
  into W_dec; ``rescale_acts_by_decoder_norm`` (topk) is folded into W_enc/b_enc/W_dec. Both folds
  leave encode/decode unchanged.
- ``log_threshold`` (training checkpoints) -> ``threshold = exp(log_threshold)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sae_bench.errors import UserError, unknown_name
from sae_bench.sae.base import SAE
from sae_bench.sae.files import (
    as_int,
    combined_sha256,
    read_json,
    read_safetensors,
    sha256_file,
)

FORMAT_NAME = "saelens"
CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
_ARCHITECTURES = {
    "standard": "relu", "gated": "gated", "jumprelu": "jumprelu", "topk": "topk",
    "batchtopk": "batchtopk",
}
_KEPT_CFG = (
    "model_name", "hook_layer", "dataset_path", "context_size", "prepend_bos", "dtype",
    "sae_lens_version", "sae_lens_training_version", "neuronpedia_id", "reshape_activations",
)


def load_saelens(
    folder: Path, *, hook_name: str | None = None, input_scale: float | None = None
) -> SAE:
    """Load a SAELens SAE folder."""
    cfg_path, weights_path = folder / CFG_FILE, folder / WEIGHTS_FILE
    cfg = read_json(cfg_path, "SAELens config")
    tensors, _ = read_safetensors(weights_path)
    meta = cfg.get("metadata") or cfg.get("meta") or {}
    if not isinstance(meta, dict):
        meta = {}

    saelens_arch = str(cfg.get("architecture") or "standard")
    if saelens_arch not in _ARCHITECTURES:
        err = unknown_name("SAELens architecture", saelens_arch, _ARCHITECTURES)
        raise UserError(f"{cfg_path}: {err} Only these can be loaded.")
    arch = _ARCHITECTURES[saelens_arch]
    activation_fn = str(cfg.get("activation_fn") or cfg.get("activation_fn_str") or "relu")
    fn_kwargs = cfg.get("activation_fn_kwargs") or {}
    if arch == "relu" and activation_fn == "topk":
        arch = "topk"
    elif activation_fn not in ("relu", "topk"):
        raise UserError(
            f"{cfg_path}: activation function {activation_fn!r} is not supported (relu, topk)."
        )
    k = cfg.get("k", fn_kwargs.get("k") if isinstance(fn_kwargs, dict) else None)

    weights = _weights(arch, tensors, weights_path, k)
    _check_dims(cfg, weights["W_enc"], cfg_path)
    if cfg.get("rescale_acts_by_decoder_norm"):
        if arch not in ("topk", "batchtopk"):
            raise UserError(
                f"{cfg_path}: rescale_acts_by_decoder_norm is only supported for topk SAEs."
            )
        _fold_decoder_norm(weights)

    file_hook = meta.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
    head = meta.get("hook_head_index", cfg.get("hook_head_index", cfg.get("hook_point_head_index")))
    normalize = _normalize_mode(cfg.get("normalize_activations"))
    scale = _input_scale(normalize, cfg, input_scale, cfg_path)

    metadata: dict[str, Any] = {
        key: meta.get(key, cfg.get(key)) for key in _KEPT_CFG if key in meta or key in cfg
    }
    metadata.update(
        saelens_architecture=saelens_arch, normalize_activations=normalize,
        hook_name_source=_hook_source(hook_name, file_hook),
    )
    hashes = {CFG_FILE: sha256_file(cfg_path), WEIGHTS_FILE: sha256_file(weights_path)}
    return SAE(
        **weights,
        architecture=arch,
        hook_name=hook_name if hook_name is not None else (file_hook or None),
        head=as_int(head, f"{cfg_path}: hook_head_index") if head is not None else None,
        input_scale=scale,
        apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
        k=k if arch in ("topk", "batchtopk") else None,
        format=FORMAT_NAME,
        source_path=str(folder),
        sha256=combined_sha256(hashes),
        file_sha256=hashes,
        metadata=metadata,
    )


def _weights(arch: str, tensors: dict[str, torch.Tensor], path: Path, k: Any) -> dict[str, Any]:
    """Pick and convert the tensors the architecture needs; name any that are missing."""
    needed = ["W_enc", "W_dec", "b_dec"] + (["b_gate", "b_mag", "r_mag"] if arch == "gated"
                                            else ["b_enc"])
    missing = [name for name in needed if name not in tensors]
    threshold = tensors.get("threshold")
    if arch == "jumprelu" and threshold is None and "log_threshold" in tensors:
        threshold = torch.exp(tensors["log_threshold"])
    if arch == "batchtopk" and "topk_threshold" in tensors:
        threshold = tensors["topk_threshold"]
    if arch in ("jumprelu", "batchtopk") and threshold is None:
        missing.append("threshold")
    if missing:
        raise UserError(
            f"{path}: missing tensor(s) {', '.join(repr(m) for m in missing)} for a SAELens "
            f"{arch} SAE (found: {', '.join(sorted(tensors))}); re-save it with SAELens."
        )
    if arch == "topk" and k is None:
        raise UserError(f"{path.parent / CFG_FILE}: a topk SAE needs 'k' in cfg.json; add it.")
    out: dict[str, Any] = {name: tensors[name] for name in ("W_enc", "W_dec", "b_dec")}
    if arch == "gated":
        out.update(b_enc=tensors["b_gate"], b_mag=tensors["b_mag"], r_mag=tensors["r_mag"])
    else:
        out["b_enc"] = tensors["b_enc"]
    if threshold is not None and arch in ("jumprelu", "batchtopk"):
        out["threshold"] = threshold
    scaling = tensors.get("scaling_factor", tensors.get("finetuning_scaling_factor"))
    if scaling is not None and not torch.allclose(scaling, torch.ones_like(scaling)):
        # SAELens decodes (f * scaling_factor) @ W_dec: the same map as f @ (diag(s) W_dec).
        out["W_dec"] = out["W_dec"] * scaling.to(out["W_dec"].dtype).reshape(-1, 1)
    return out


def _fold_decoder_norm(weights: dict[str, Any]) -> None:
    """Fold SAELens' rescale_acts_by_decoder_norm: pre·‖W_dec‖ before top-k, f/‖W_dec‖ after."""
    norms = weights["W_dec"].norm(dim=-1)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    weights["W_enc"] = weights["W_enc"] * norms
    weights["b_enc"] = weights["b_enc"] * norms
    weights["W_dec"] = weights["W_dec"] / safe.reshape(-1, 1)


def _check_dims(cfg: dict[str, Any], W_enc: torch.Tensor, cfg_path: Path) -> None:
    if W_enc.ndim != 2:
        return  # the SAE's own validation names the bad shape
    for key, actual in (("d_in", W_enc.shape[0]), ("d_sae", W_enc.shape[1])):
        if cfg.get(key) is not None and as_int(cfg[key], f"{cfg_path}: {key}") != int(actual):
            raise UserError(
                f"{cfg_path}: cfg.json says {key}={cfg[key]} but W_enc has shape "
                f"[{W_enc.shape[0]}, {W_enc.shape[1]}] ([d_in, d_sae]); the files do not match."
            )


def _normalize_mode(value: Any) -> str:
    if value is None or value is False:
        return "none"
    if value is True:
        return "expected_average_only_in"  # pre-6.0 boolean meaning, as SAELens maps it
    return str(value)


def _input_scale(mode: str, cfg: dict[str, Any], override: float | None, cfg_path: Path) -> float:
    if mode == "none":
        return 1.0 if override is None else override
    if mode == "expected_average_only_in":
        if override is not None:
            return override
        if cfg.get("norm_scaling_factor") is not None:
            return float(cfg["norm_scaling_factor"])
        raise UserError(
            f"{cfg_path}: normalize_activations='expected_average_only_in' but the scaling "
            "factor is not stored; add norm_scaling_factor (sqrt(d_in) / mean ||x||) to cfg.json "
            "or pass input_scale, or fold it into the weights with SAELens."
        )
    raise UserError(
        f"{cfg_path}: normalize_activations={mode!r} rescales each input separately, which "
        "this benchmark does not support; use an SAE trained with 'none' or "
        "'expected_average_only_in'."
    )


def _hook_source(override: str | None, from_file: str | None) -> str | None:
    if override is not None:
        return "override"
    return "file" if from_file else None


def save_saelens(sae: SAE, folder: Path | str) -> Path:
    """Write `sae` as a SAELens folder (cfg.json + sae_weights.safetensors).

    SAELens stores no activation scale, so `input_scale` s is folded into the weights:
    (x·s − b_dec)·W_enc = (x − b_dec/s)·(s·W_enc) and (f·W_dec + b_dec)/s = f·(W_dec/s) + b_dec/s,
    which leaves encode and decode unchanged. SAELens has no notion of a task position either; the
    native format keeps it.
    """
    import json

    from safetensors.torch import save

    from sae_bench.io import write_bytes_atomic, write_text_atomic

    inverse = {v: k for k, v in _ARCHITECTURES.items()}
    s = float(sae.input_scale)
    tensors = {
        "W_enc": sae.W_enc * s,
        "W_dec": sae.W_dec / s,
        "b_dec": sae.b_dec / s,
    }
    if sae.architecture == "gated":
        assert sae.r_mag is not None and sae.b_mag is not None  # validated by the contract
        tensors.update(b_gate=sae.b_enc, b_mag=sae.b_mag, r_mag=sae.r_mag)
    else:
        tensors["b_enc"] = sae.b_enc
    if sae.threshold is not None and sae.architecture in ("jumprelu", "batchtopk"):
        tensors["threshold"] = sae.threshold
    cfg = {
        "architecture": inverse[sae.architecture],
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "hook_name": sae.hook_name,
        "hook_head_index": sae.head,
        "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": "none",
        "dtype": "float32",
    }
    if sae.k is not None:
        cfg["k"] = int(sae.k)
    folder = Path(folder)
    weights = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write_bytes_atomic(folder / WEIGHTS_FILE, save(weights))
    write_text_atomic(folder / CFG_FILE, json.dumps(cfg, indent=2) + "\n")
    return folder
