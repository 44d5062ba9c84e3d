"""dictionary_learning (saprmarks) checkpoints: ``ae.pt`` state dict + ``config.json``.

``config.json`` is ``{"trainer": {"dict_class", "activation_dim", "dict_size", "k", "layer",
"lm_name", "submodule_name", ...}, "buffer": {...}}``. Mapping per ``dict_class`` (checked against
dictionary_learning/dictionary.py and trainers/*.py; nn.Linear stores ``[out, in]``, hence the
transposes):

- ``AutoEncoder``: ``encoder.weight [d_sae, d_in]``, ``encoder.bias``, ``decoder.weight
  [d_in, d_sae]``, ``bias`` [d_in]; encode ``ReLU(enc(x - bias))`` -> relu with
  apply_b_dec_to_input. Like the library's ``from_pretrained`` (``normalize_decoder=True``) the
  decoder rows are rescaled to unit norm with the inverse factor folded into the encoder:
  reconstructions are unchanged, latents are on the unit-norm-decoder scale.
- ``AutoEncoderNew`` (or ``AutoEncoder`` saved with ``decoder.bias``): ``ReLU(enc(x))``, decoder
  with bias -> relu without input centring.
- ``GatedAutoEncoder``: ``encoder.weight``, ``decoder.weight``, ``decoder_bias``, ``r_mag``,
  ``gate_bias``, ``mag_bias`` -> gated.
- ``AutoEncoderTopK``: ``encoder.*``, ``decoder.weight``, ``b_dec``, ``k`` -> topk (its default
  encode does not use the stored ``threshold``).
- ``BatchTopKSAE``: as TopK plus scalar ``threshold`` -> batchtopk (``ReLU(pre)·1[> θ]``, the
  library's inference encode). ``MatryoshkaBatchTopKSAE`` (``W_enc``... layout) likewise.
- ``JumpReluAutoEncoder``: ``W_enc``, ``b_enc``, ``W_dec``, ``b_dec``, ``threshold``; the library
  loads it with ``apply_b_dec_to_input=False`` -> jumprelu without input centring.

An uncalibrated BatchTopK threshold (the library's −1 placeholder) is refused, not scored as a
dense ReLU SAE. Saved SAEs already work on raw activations: when trained with
``normalize_activations`` the library rescales the biases back before writing ``ae.pt``, so
input_scale is 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sae_bench.errors import UserError, unknown_name
from sae_bench.models import processing
from sae_bench.sae.base import SAE
from sae_bench.sae.files import (
    as_int,
    combined_sha256,
    read_json,
    read_torch,
    sha256_file,
    split_state_dict,
)
from sae_bench.sae.hooknames import from_dictionary_learning

FORMAT_NAME = "dictionary_learning"
WEIGHTS_FILE = "ae.pt"
CONFIG_FILE = "config.json"
_KEPT_TRAINER = ("trainer_class", "lm_name", "layer", "submodule_name", "wandb_name")
Parts = dict[str, Any]


def load_dictionary_learning(path: Path, *, hook_name: str | None = None) -> SAE:
    """Load a dictionary_learning ``ae.pt`` (give the file or the folder holding it)."""
    folder = path.parent if path.is_file() else path
    weights_path = path if path.is_file() else folder / WEIGHTS_FILE
    config_path = folder / CONFIG_FILE
    if not config_path.exists():
        raise UserError(
            f"{weights_path}: no {CONFIG_FILE} next to it; dictionary_learning saves one with "
            "the SAE (trainer.dict_class, k, ...). Copy it alongside ae.pt."
        )
    trainer = read_json(config_path, "dictionary_learning config").get("trainer")
    if not isinstance(trainer, dict):
        raise UserError(f"{config_path}: expected a 'trainer' object with 'dict_class'.")
    dict_class = trainer.get("dict_class")
    if not isinstance(dict_class, str):
        raise UserError(f"{config_path}: trainer.dict_class is missing; cannot tell the SAE type.")
    if dict_class not in _CONVERTERS:
        err = unknown_name("dictionary_learning dict_class", dict_class, _CONVERTERS)
        raise UserError(f"{config_path}: {err} Only these can be loaded.")

    state, scalars = split_state_dict(read_torch(weights_path), weights_path)
    parts = _CONVERTERS[dict_class](_StateDict(state, weights_path), trainer)
    _check_dims(trainer, parts["W_enc"], config_path)
    # Files written by our exporter (library_save) name hooks the library has no word for.
    file_hook = trainer.get("sae_bench_hook_name") or from_dictionary_learning(
        trainer.get("submodule_name"))
    head = trainer.get("sae_bench_head")
    metadata: dict[str, Any] = {key: trainer[key] for key in _KEPT_TRAINER if key in trainer}
    metadata.update(parts.pop("metadata", {}))
    metadata.update(
        dict_class=dict_class,
        # the library trains on raw Hugging Face hidden states (nnsight), unprocessed
        model_processing=processing.of_library_config(trainer, config_path),
        hook_name_source="override" if hook_name is not None else ("file" if file_hook else None),
    )
    hashes = {WEIGHTS_FILE: sha256_file(weights_path), CONFIG_FILE: sha256_file(config_path)}
    del scalars  # plain values in a state dict carry nothing the mapping needs
    return SAE(
        **parts,
        hook_name=hook_name if hook_name is not None else file_hook,
        head=as_int(head, f"{config_path}: sae_bench_head") if head is not None else None,
        format=FORMAT_NAME,
        source_path=str(weights_path),
        sha256=combined_sha256(hashes),
        file_sha256=hashes,
        metadata=metadata,
    )


class _StateDict:
    """State-dict access that names missing keys and non-matrix weights in one line."""

    def __init__(self, tensors: dict[str, Tensor], path: Path) -> None:
        self.tensors, self.path = tensors, path

    def require(self, *keys: str) -> None:
        missing = [key for key in keys if key not in self.tensors]
        if missing:
            raise UserError(
                f"{self.path}: missing key(s) {', '.join(repr(m) for m in missing)} for this "
                f"dict_class (found: {', '.join(sorted(self.tensors))}); is config.json the one "
                "saved with this ae.pt?"
            )

    def __getitem__(self, key: str) -> Tensor:
        self.require(key)
        return self.tensors[key]

    def __contains__(self, key: str) -> bool:
        return key in self.tensors

    def linear(self, key: str) -> Tensor:
        """An nn.Linear weight ``[out, in]`` transposed to ``[in, out]``."""
        tensor = self[key]
        if tensor.ndim != 2:
            raise UserError(
                f"{self.path}: {key!r} has {tensor.ndim} dimension(s); expected a 2-D weight."
            )
        return tensor.T

    def k(self, trainer: dict[str, Any]) -> int:
        if "k" in self.tensors and self.tensors["k"].numel() != 1:
            raise UserError(f"{self.path}: tensor 'k' must hold one number.")
        value: Any = self.tensors["k"].item() if "k" in self.tensors else trainer.get("k")
        if value is None:
            raise UserError(f"{self.path}: a top-k SAE needs k (state dict 'k' or trainer.k).")
        return as_int(value, f"{self.path}: k")


def _autoencoder(sd: _StateDict, trainer: dict[str, Any]) -> Parts:
    if "bias" not in sd and "decoder.bias" in sd:
        return _autoencoder_new(sd, trainer)
    sd.require("encoder.weight", "encoder.bias", "decoder.weight", "bias")
    W_enc, b_enc = sd.linear("encoder.weight"), sd["encoder.bias"]
    W_dec = sd.linear("decoder.weight")
    norms = W_dec.norm(dim=-1)
    if W_dec.ndim == 2 and W_enc.shape[1] == W_dec.shape[0]:
        # Match AutoEncoder.from_pretrained(normalize_decoder=True); zero rows are left alone.
        safe = torch.where(norms > 0, norms, torch.ones_like(norms))
        W_enc, b_enc, W_dec = W_enc * safe, b_enc * safe, W_dec / safe.reshape(-1, 1)
    return {
        "W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": sd["bias"],
        "architecture": "relu", "apply_b_dec_to_input": True,
        "metadata": {"decoder_norm_folded": True},
    }


def _autoencoder_new(sd: _StateDict, trainer: dict[str, Any]) -> Parts:
    sd.require("encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias")
    return {
        "W_enc": sd.linear("encoder.weight"), "b_enc": sd["encoder.bias"],
        "W_dec": sd.linear("decoder.weight"), "b_dec": sd["decoder.bias"],
        "architecture": "relu", "apply_b_dec_to_input": False,
    }


def _gated(sd: _StateDict, trainer: dict[str, Any]) -> Parts:
    sd.require("encoder.weight", "decoder.weight", "decoder_bias", "r_mag", "gate_bias", "mag_bias")
    return {
        "W_enc": sd.linear("encoder.weight"), "b_enc": sd["gate_bias"],
        "W_dec": sd.linear("decoder.weight"), "b_dec": sd["decoder_bias"],
        "r_mag": sd["r_mag"], "b_mag": sd["mag_bias"],
        "architecture": "gated", "apply_b_dec_to_input": True,
    }


def _linear_topk(sd: _StateDict, trainer: dict[str, Any], batch: bool) -> Parts:
    sd.require("encoder.weight", "encoder.bias", "decoder.weight", "b_dec", *(
        ("threshold",) if batch else ()))
    parts: Parts = {
        "W_enc": sd.linear("encoder.weight"), "b_enc": sd["encoder.bias"],
        "W_dec": sd.linear("decoder.weight"), "b_dec": sd["b_dec"],
        "k": sd.k(trainer), "apply_b_dec_to_input": True,
        "architecture": "batchtopk" if batch else "topk",
    }
    if batch:
        parts.update(_batch_threshold(sd))
    return parts


def _matryoshka(sd: _StateDict, trainer: dict[str, Any]) -> Parts:
    sd.require("W_enc", "b_enc", "W_dec", "b_dec", "threshold")
    return {
        "W_enc": sd["W_enc"], "b_enc": sd["b_enc"], "W_dec": sd["W_dec"], "b_dec": sd["b_dec"],
        "k": sd.k(trainer), "apply_b_dec_to_input": True, "architecture": "batchtopk",
        **_batch_threshold(sd),
    }


def _batch_threshold(sd: _StateDict) -> Parts:
    threshold = sd["threshold"]
    # -1 is the library's "never calibrated" value (the trainer sets it from threshold_start_step
    # on): every positive latent would pass, scoring a dense ReLU SAE under a BatchTopK name.
    # SAEBench refuses such checkpoints too.
    if bool((threshold < 0).any()):
        raise UserError(
            f"{sd.path}: the BatchTopK threshold was never calibrated ({float(threshold.min()):g} "
            "< 0: training stopped before the trainer's threshold_start_step), so encoding would "
            "keep every positive latent; use a checkpoint saved after threshold_start_step."
        )
    return {"threshold": threshold}


def _jumprelu(sd: _StateDict, trainer: dict[str, Any]) -> Parts:
    sd.require("W_enc", "b_enc", "W_dec", "b_dec", "threshold")
    return {
        "W_enc": sd["W_enc"], "b_enc": sd["b_enc"], "W_dec": sd["W_dec"], "b_dec": sd["b_dec"],
        "threshold": sd["threshold"], "architecture": "jumprelu", "apply_b_dec_to_input": False,
    }


_CONVERTERS: dict[str, Callable[[_StateDict, dict[str, Any]], Parts]] = {
    "AutoEncoder": _autoencoder,
    "AutoEncoderNew": _autoencoder_new,
    "GatedAutoEncoder": _gated,
    "AutoEncoderTopK": lambda sd, trainer: _linear_topk(sd, trainer, batch=False),
    "BatchTopKSAE": lambda sd, trainer: _linear_topk(sd, trainer, batch=True),
    "MatryoshkaBatchTopKSAE": _matryoshka,
    "JumpReluAutoEncoder": _jumprelu,
}
DICT_CLASSES: tuple[str, ...] = tuple(_CONVERTERS)


def _check_dims(trainer: dict[str, Any], W_enc: Tensor, config_path: Path) -> None:
    if W_enc.ndim != 2:
        return
    for key, actual in (("activation_dim", W_enc.shape[0]), ("dict_size", W_enc.shape[1])):
        if trainer.get(key) is not None and as_int(trainer[key], f"trainer.{key}") != int(actual):
            raise UserError(
                f"{config_path}: trainer.{key}={trainer[key]} but the weights give {actual}; "
                "config.json and ae.pt come from different runs."
            )

