"""EleutherAI sparsify folders: ``cfg.json`` + ``sae.safetensors``, one folder per hook point.

Layout (checked against sparsify/sparse_coder.py and config.py): ``encoder.weight
[num_latents, d_in]``, ``encoder.bias [num_latents]``, ``W_dec [num_latents, d_in]``, ``b_dec
[d_in]``; cfg.json holds the ``SparseCoderConfig`` fields plus ``d_in``. Encoding is
``topk(ReLU(enc(x - b_dec)), k)`` -> our topk with apply_b_dec_to_input. The folder name is the
Hugging Face module path ("layers.6", "layers.6.mlp") and is mapped to a TransformerLens hook when
the pattern is unambiguous.

Refused, because the contract cannot express them: transcoders (``transcode``), skip connections
(``skip_connection`` / ``W_skip``), ``groupmax`` activation, ``signed`` latents, and the n-gram /
embedding skip variants (``gram_lookup``, ``embed_skip``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sae_bench.errors import UserError
from sae_bench.models import processing
from sae_bench.sae.base import SAE
from sae_bench.sae.files import (
    as_int,
    combined_sha256,
    read_json,
    read_safetensors,
    sha256_file,
)
from sae_bench.sae.hooknames import from_hf_module_path

FORMAT_NAME = "sparsify"
CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae.safetensors"
_UNSUPPORTED_FLAGS = {
    "transcode": "it is a transcoder (predicts a module's output), not an SAE",
    "skip_connection": "it has a linear skip connection (W_skip)",
    "signed": "its latents are signed",
    "embed_skip": "it has an embedding skip connection",
    "gram_lookup": "it subtracts an n-gram table from its input",
}
_KEPT_CFG = ("expansion_factor", "num_latents", "normalize_decoder", "multi_topk", "k")


def load_sparsify(folder: Path, *, hook_name: str | None = None) -> SAE:
    """Load one sparsify hook-point folder."""
    cfg_path, weights_path = folder / CFG_FILE, folder / WEIGHTS_FILE
    cfg = read_json(cfg_path, "sparsify config")
    for flag, why in _UNSUPPORTED_FLAGS.items():
        if cfg.get(flag):
            raise UserError(f"{folder}: cannot load this sparsify checkpoint: {why} ({flag}=true).")
    activation = cfg.get("activation", "topk")
    if activation != "topk":
        raise UserError(
            f"{cfg_path}: activation {activation!r} is not supported; only 'topk' sparsify "
            "SAEs can be loaded."
        )
    if cfg.get("k") is None:
        raise UserError(f"{cfg_path}: 'k' is missing; a sparsify TopK SAE needs it.")

    tensors, _ = read_safetensors(weights_path)
    if "W_skip" in tensors:
        raise UserError(f"{weights_path}: has a skip connection (W_skip), which is not supported.")
    missing = [key for key in ("encoder.weight", "encoder.bias", "W_dec", "b_dec")
               if key not in tensors]
    if missing:
        raise UserError(
            f"{weights_path}: missing tensor(s) {', '.join(repr(m) for m in missing)} (found: "
            f"{', '.join(sorted(tensors))}); was it saved without its decoder?"
        )
    encoder = tensors["encoder.weight"]
    if encoder.ndim != 2:
        raise UserError(f"{weights_path}: 'encoder.weight' must be 2-D [num_latents, d_in].")
    if cfg.get("d_in") is not None and as_int(cfg["d_in"], f"{cfg_path}: d_in") != int(
        encoder.shape[1]
    ):
        raise UserError(
            f"{cfg_path}: d_in={cfg['d_in']} but encoder.weight has shape "
            f"[{encoder.shape[0]}, {encoder.shape[1]}] ([num_latents, d_in]); files do not match."
        )

    # Folders written by our exporter (library_save) name hooks sparsify has no word for.
    file_hook = cfg.get("sae_bench_hook_name") or from_hf_module_path(folder.name)
    head = cfg.get("sae_bench_head")
    metadata: dict[str, Any] = {key: cfg[key] for key in _KEPT_CFG if key in cfg}
    metadata.update(
        hookpoint=folder.name,
        # sparsify trains on raw Hugging Face hidden states: no TransformerLens processing
        model_processing=processing.of_library_config(cfg, cfg_path),
        hook_name_source="override" if hook_name is not None else ("file" if file_hook else None),
    )
    hashes = {CFG_FILE: sha256_file(cfg_path), WEIGHTS_FILE: sha256_file(weights_path)}
    return SAE(
        W_enc=encoder.T,
        b_enc=tensors["encoder.bias"],
        W_dec=tensors["W_dec"],
        b_dec=tensors["b_dec"],
        architecture="topk",
        k=as_int(cfg["k"], f"{cfg_path}: k"),
        apply_b_dec_to_input=True,
        hook_name=hook_name if hook_name is not None else file_hook,
        head=as_int(head, f"{cfg_path}: sae_bench_head") if head is not None else None,
        format=FORMAT_NAME,
        source_path=str(folder),
        sha256=combined_sha256(hashes),
        file_sha256=hashes,
        metadata=metadata,
    )

