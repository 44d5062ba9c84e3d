"""SAELens folders: ``cfg.json`` + ``sae_weights.safetensors`` (SAELens 3.x-6.x layouts).

Mapping decisions (checked against SAELens 6.54's saes/*.py, loading/pretrained_sae_loaders.py and
training/activation_scaler.py, and round-tripped through the library in tests/test_interop.py):

- architecture ``standard`` -> relu; ``standard`` with ``activation_fn[_str] == "topk"`` (pre-6.0
  configs) -> topk with ``activation_fn_kwargs.k``; ``gated``/``jumprelu``/``topk`` as named;
  ``batchtopk`` and ``matryoshka_batchtopk`` (training checkpoints; SAELens' inference form of
  both is jumprelu with the learned threshold, and the Matryoshka prefixes only shape training)
  -> batchtopk with the scalar ``topk_threshold``.
- hook name and head: ``metadata.hook_name`` / ``metadata.hook_head_index`` (6.x), else the
  top-level ``hook_name`` / ``hook_point`` and ``hook_head_index`` / ``hook_point_head_index``.
- ``apply_b_dec_to_input`` defaults to true, as in SAELens; it must be a boolean (or the string
  "true"/"false"): ``bool("false")`` would silently be True.
- normalisation (``normalize_activations``, ``norm_scaling_factor``, ``activation_scaler.json``,
  covariance whitening): see `saelens_scaling`.
- ``scaling_factor`` (old "finetuning scaling factor", multiplies latents before W_dec) is folded
  into W_dec; ``rescale_acts_by_decoder_norm`` (topk) is folded into W_enc/b_enc/W_dec. Both folds
  leave encode/decode unchanged.
- ``log_threshold`` (training checkpoints) -> ``threshold = exp(log_threshold)``.
- the model's processing (``metadata.model_from_pretrained_kwargs``) is kept as
  ``model_processing`` so the benchmark runs the model the way the SAE saw it (`processing`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sae_bench.errors import UserError, unknown_name
from sae_bench.models import processing
from sae_bench.sae import saelens_scaling as scaling
from sae_bench.sae.base import SAE
from sae_bench.sae.files import (
    as_int,
    combined_sha256,
    read_json,
    read_safetensors,
    sha256_file,
)
from sae_bench.sae.validation import shape_str

FORMAT_NAME = "saelens"
CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
_ARCHITECTURES = {
    "standard": "relu", "gated": "gated", "jumprelu": "jumprelu", "topk": "topk",
    "batchtopk": "batchtopk", "matryoshka_batchtopk": "batchtopk",
}
# SAELens architectures that are not sparse autoencoders of one activation (or whose encoder
# is not one of ours), with the reason they are refused.
_REFUSED = {
    "transcoder": "it is a transcoder (reads one hook, writes another), not an SAE",
    "skip_transcoder": "it is a transcoder with a skip connection, not an SAE",
    "jumprelu_transcoder": "it is a transcoder (reads one hook, writes another), not an SAE",
    "temporal": "its encoder attends over earlier tokens, so a latent depends on the context",
    "matching_pursuit": "its latents come from an iterative pursuit, not one encoder pass",
    "abstopk": "it keeps the k largest |pre-activations| and so has negative latents",
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
    if saelens_arch in _REFUSED:
        raise UserError(f"{cfg_path}: SAELens architecture {saelens_arch!r} cannot be scored: "
                        f"{_REFUSED[saelens_arch]}; use an SAE of one of "
                        f"{', '.join(_ARCHITECTURES)}.")
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
    apply_b_dec = processing.as_bool(cfg.get("apply_b_dec_to_input", True),
                                     f"{cfg_path}: apply_b_dec_to_input")

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
    normalize = scaling.normalize_mode(cfg.get("normalize_activations"), cfg_path)
    scale = scaling.input_scale(normalize, cfg, input_scale, folder)
    if normalize == "covariance_whitening":
        scaling.fold_whitening(weights, folder, apply_b_dec)

    metadata: dict[str, Any] = {
        key: meta.get(key, cfg.get(key)) for key in _KEPT_CFG if key in meta or key in cfg
    }
    kwargs = meta.get("model_from_pretrained_kwargs", cfg.get("model_from_pretrained_kwargs"))
    # SAELens loads models with from_pretrained_no_processing(**kwargs): none given means raw.
    # Our own exports of an SAE that declared nothing leave it undeclared (saelens_save).
    undeclared = kwargs is None and meta.get("exported_by") == "principled-sae-bench"
    metadata.update(
        saelens_architecture=saelens_arch, normalize_activations=normalize,
        hook_name_source=_hook_source(hook_name, file_hook),
        model_processing=None if undeclared else processing.from_kwargs(kwargs, f"{cfg_path}"),
    )
    hashes = {CFG_FILE: sha256_file(cfg_path), WEIGHTS_FILE: sha256_file(weights_path)}
    for extra in (scaling.SCALER_FILE, scaling.WHITENING_FILE):
        if (folder / extra).exists() and normalize != "none":
            hashes[extra] = sha256_file(folder / extra)
    return SAE(
        **weights,
        architecture=arch,
        hook_name=hook_name if hook_name is not None else (file_hook or None),
        head=as_int(head, f"{cfg_path}: hook_head_index") if head is not None else None,
        input_scale=scale,
        apply_b_dec_to_input=apply_b_dec,
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
    factor = tensors.get("scaling_factor", tensors.get("finetuning_scaling_factor"))
    if factor is not None:
        d_sae = int(out["W_dec"].shape[0]) if out["W_dec"].ndim == 2 else -1
        if not factor.is_floating_point() or factor.numel() not in (1, d_sae):
            raise UserError(
                f"{path}: 'scaling_factor' has shape {shape_str(factor.shape)} and dtype "
                f"{factor.dtype}; SAELens expects a float [d_sae={d_sae}] (or one number). "
                "Re-save the SAE with SAELens."
            )
        if not torch.allclose(factor, torch.ones_like(factor)):
            # SAELens decodes (f * scaling_factor) @ W_dec: the same map as f @ (diag(s) W_dec).
            out["W_dec"] = out["W_dec"] * factor.to(out["W_dec"].dtype).reshape(-1, 1)
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


def _hook_source(override: str | None, from_file: str | None) -> str | None:
    if override is not None:
        return "override"
    return "file" if from_file else None
