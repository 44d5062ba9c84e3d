"""The native single-file format: ``.safetensors`` (preferred) or a weights-only ``.pt``.

Tensors ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_enc [d_sae]``, ``b_dec [d_in]``
(+ ``threshold``, ``r_mag``, ``b_mag`` as the architecture needs) and metadata: in the
safetensors header (all values strings) or, in a ``.pt`` dict, plain str/int/float values next to
the tensors. See FORMAT.md in this folder for the user-facing description.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sae_bench.errors import UserError
from sae_bench.fileio.atomic import write_bytes_atomic
from sae_bench.fileio.canonical import safetensors_bytes
from sae_bench.sae.architectures import ARCHITECTURES, EXTRA_TENSORS, check_architecture
from sae_bench.sae.base import SAE
from sae_bench.sae.files import (
    one_line,
    read_safetensors,
    read_torch,
    sha256_file,
    split_state_dict,
)

FORMAT_NAME = "native"
FORMAT_VERSION = "1"
CORE_TENSORS = ("W_enc", "W_dec", "b_enc", "b_dec")
_RESERVED = {
    "format", "format_version", "architecture", "hook_name", "head", "position", "k",
    "input_scale", "apply_b_dec_to_input", "metadata",
}
_KNOWN_TENSORS = {*CORE_TENSORS, *EXTRA_TENSORS, "b_gate", "k"}


def load_native(
    path: Path, *, hook_name: str | None = None, input_scale: float | None = None
) -> SAE:
    """Load a native ``.safetensors`` or ``.pt`` SAE file.

    A file without ``hook_name`` loads with ``hook_name=None``, like external formats whose hook
    is unknown: the caller asks for ``--hook`` (or a bundle node supplies it).
    """
    if path.suffix == ".safetensors":
        tensors, meta = read_safetensors(path)
        raw: dict[str, Any] = dict(meta)
    else:
        tensors, raw = split_state_dict(read_torch(path), path)
    if "k" in tensors:  # a .pt may carry k as a 0-d tensor buffer, as dictionary_learning does
        k_tensor = tensors.pop("k")
        if k_tensor.numel() != 1:
            raise UserError(f"{path}: tensor 'k' must hold one number, got "
                            f"{k_tensor.numel()}; save k as a single value.")
        raw.setdefault("k", k_tensor.item())
    return sae_from_parts(tensors, raw, path, hook_name=hook_name, input_scale=input_scale)


def sae_from_parts(
    tensors: Mapping[str, torch.Tensor],
    raw: Mapping[str, Any],
    path: Path,
    *,
    hook_name: str | None,
    input_scale: float | None,
) -> SAE:
    """Build an `SAE` from native tensor names and (string or typed) metadata values."""
    arch = raw.get("architecture")
    if arch is None:
        raise UserError(
            f"{path}: no 'architecture' in the file's metadata; add architecture="
            f"{'|'.join(ARCHITECTURES)} (see sae_bench/sae/FORMAT.md). If this is a SAELens or "
            "sparsify weights file, load its folder (with cfg.json) instead."
        )
    try:
        arch = check_architecture(str(arch))
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    tensors = dict(tensors)
    if arch == "gated" and "b_enc" not in tensors and "b_gate" in tensors:
        tensors["b_enc"] = tensors.pop("b_gate")
    missing = [name for name in CORE_TENSORS if name not in tensors]
    if missing:
        raise UserError(
            f"{path}: missing tensor(s) {', '.join(repr(m) for m in missing)}; a native SAE file "
            f"needs {', '.join(CORE_TENSORS)} (found: {', '.join(sorted(tensors)) or 'none'})."
        )
    hook = hook_name if hook_name is not None else _opt_str(raw, "hook_name")
    metadata = _extra_metadata(raw, path)
    ignored = sorted(set(tensors) - _KNOWN_TENSORS)
    if ignored:
        metadata["ignored_tensors"] = ignored
    metadata["hook_name_source"] = (
        "override" if hook_name is not None else ("file" if hook is not None else None)
    )
    digest = sha256_file(path)
    return SAE(
        W_enc=tensors["W_enc"], W_dec=tensors["W_dec"], b_enc=tensors["b_enc"],
        b_dec=tensors["b_dec"], threshold=tensors.get("threshold"), r_mag=tensors.get("r_mag"),
        b_mag=tensors.get("b_mag"),
        architecture=arch,
        hook_name=hook,
        head=_opt_int(raw, "head", path),
        position=_opt_str(raw, "position"),
        k=_opt_number(raw, "k", path),
        input_scale=input_scale if input_scale is not None else _scale(raw, path),
        apply_b_dec_to_input=_opt_bool(raw, "apply_b_dec_to_input", path, default=True),
        format=FORMAT_NAME,
        source_path=str(path),
        sha256=digest,
        file_sha256={path.name: digest},
        metadata=metadata,
    )


def save_native(sae: SAE, path: str | Path) -> Path:
    """Write `sae` as one native ``.safetensors`` file, atomically (temp file + ``os.replace``).

    A crash mid-write never leaves a truncated file under `path`. Returns the path written.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"save_native writes .safetensors files; got {path.name!r}: give a "
                        "path ending in .safetensors.")
    header = {
        "format": "sae_bench.native",
        "format_version": FORMAT_VERSION,
        "architecture": sae.architecture,
        "input_scale": repr(float(sae.input_scale)),
        "apply_b_dec_to_input": "true" if sae.apply_b_dec_to_input else "false",
    }
    for key in ("hook_name", "head", "position", "k"):
        value = getattr(sae, key)
        if value is not None:
            header[key] = str(value)
    metadata = dict(sae.metadata)
    metadata.pop("hook_name_source", None)
    if sae.format not in (FORMAT_NAME, "memory"):
        metadata["converted_from"] = {
            "format": sae.format, "source_path": sae.source_path, "sha256": sae.sha256,
        }
    header["metadata"] = json.dumps(metadata, sort_keys=True, default=str)
    tensors = {name: t.detach().cpu().contiguous() for name, t in sae.tensors().items()}
    # Canonical header: the same SAE gives the same bytes (and sha256) in every process.
    write_bytes_atomic(path, safetensors_bytes(tensors, header))
    return path


# --------------------------------------------------------------------------- metadata parsing
def _extra_metadata(raw: Mapping[str, Any], path: Path) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    blob = raw.get("metadata")
    if isinstance(blob, str) and blob:
        try:
            parsed = json.loads(blob)
        except json.JSONDecodeError as err:
            raise UserError(
                f"{path}: metadata entry 'metadata' is not valid JSON ({one_line(err)}); fix "
                "or remove it."
            ) from None
        if not isinstance(parsed, dict):
            raise UserError(f"{path}: metadata entry 'metadata' must be a JSON object; fix or "
                            "remove it.")
        metadata.update(parsed)
    metadata.update({key: value for key, value in raw.items() if key not in _RESERVED})
    return metadata


def _opt_str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return None if value is None or value == "" else str(value)


def _opt_int(raw: Mapping[str, Any], key: str, path: Path) -> int | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"{path}: metadata {key}={value!r} is not an integer; fix that "
                        "metadata entry (see sae_bench/sae/FORMAT.md).") from None


def _opt_number(raw: Mapping[str, Any], key: str, path: Path) -> int | float | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if float(value).is_integer() else float(value)
    try:
        number = float(str(value))
    except ValueError:
        raise UserError(f"{path}: metadata {key}={value!r} is not a number; fix that metadata "
                        "entry (see sae_bench/sae/FORMAT.md).") from None
    return int(number) if number.is_integer() else number


def _scale(raw: Mapping[str, Any], path: Path) -> float:
    value = raw.get("input_scale")
    if value is None or value == "":
        return 1.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{path}: metadata input_scale={value!r} is not a number; fix that "
                        "metadata entry (see sae_bench/sae/FORMAT.md).") from None


def _opt_bool(raw: Mapping[str, Any], key: str, path: Path, *, default: bool) -> bool:
    value = raw.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise UserError(f"{path}: metadata {key}={value!r} must be true or false; fix that "
                    "metadata entry.")
