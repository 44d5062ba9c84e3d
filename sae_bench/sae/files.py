"""Safe, user-friendly reading of the files SAEs come in.

Every reader here turns a broken input into a one-line `UserError` that names the file, the
problem and the fix. Nothing executes code from a file: ``.pt`` files go through
``torch.load(weights_only=True)`` and JSON through ``json.load``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from sae_bench.errors import UserError

# Values a weights_only .pt may carry next to tensors (metadata such as architecture, k, ...).
Scalar = str | int | float | bool | None
_SCALAR_TYPES = (str, int, float, bool, type(None))


def one_line(text: object, limit: int = 240) -> str:
    """Collapse a (library) error message to one short line for a `UserError`."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def require_file(path: Path, what: str = "SAE file") -> None:
    """Raise a `UserError` unless `path` is an existing, non-empty regular file."""
    if not path.exists():
        raise UserError(f"{what} not found: {path}; check the path and that the file exists.")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a regular file (a folder, device or FIFO); give "
                        "the path of the file itself.")
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty (0 bytes); re-download or re-save it.")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (SAE files can be GBs)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def combined_sha256(file_hashes: Mapping[str, str]) -> str:
    """One digest for a multi-file SAE; for a single file it is that file's own sha256.

    Keeping the single-file case equal to ``sha256sum FILE`` lets users verify provenance by hand.
    """
    if len(file_hashes) == 1:
        return next(iter(file_hashes.values()))
    lines = "".join(f"{name}\0{digest}\n" for name, digest in sorted(file_hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def read_json(path: Path, what: str = "config") -> dict[str, Any]:
    """Parse a JSON object file; a missing/invalid/non-object file is a `UserError`."""
    require_file(path, what)
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(
            f"{what} {path} is not valid JSON ({one_line(err)}); fix or re-save it."
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a JSON object, got {type(data).__name__}; "
                        "fix or re-save it.")
    return data


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string header metadata of a ``.safetensors`` file (CPU)."""
    require_file(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own SafetensorError (and OSError)
        raise UserError(
            f"cannot read {path} as safetensors ({one_line(err)}); the file is corrupt or "
            "truncated: re-download or re-save it."
        ) from None
    if not tensors:
        raise UserError(f"{path} holds no tensors; it is not an SAE checkpoint: point --sae at "
                        "the SAE's weights file.")
    return tensors, metadata


def read_torch(path: Path) -> Any:
    """``torch.load(weights_only=True)``: plain containers of tensors and scalars only."""
    require_file(path)
    try:
        # torch warns about the pickle protocol of files it is about to refuse; the refusal below
        # is the one line the user should see.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # The weights-only unpickler refuses junk bytes and code with the same message; only a
        # well-formed pickle that imports something is code (`_imports` never executes it).
        if "weights only load failed" in str(err).lower() and _imports(path):
            raise UserError(
                f"refusing to load {path}: the file contains pickled code; re-save it as tensors "
                "(safetensors), e.g. safetensors.torch.save_file(state_dict, 'sae.safetensors')."
            ) from None
        raise _corrupt(path, err) from None
    except Exception as err:  # zip errors (RuntimeError), EOFError, KeyError on junk bytes...
        raise _corrupt(path, err) from None


_IMPORT_OPS = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}


def _imports(path: Path) -> bool:
    """Whether the file's pickle (the file itself, or data.pkl inside a torch.save zip) parses
    as a complete pickle stream that imports or calls something. Read with
    `pickletools.genops`, which decodes opcodes and runs none of them."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("data.pkl")]
                if not names:
                    return False
                data = archive.read(names[0])
        else:
            data = path.read_bytes()
        ops = {op.name for op, _, _ in pickletools.genops(data)}
    except Exception:  # any decoding failure: not a well-formed pickle, so junk, not code
        return False
    return bool(ops & _IMPORT_OPS) and "STOP" in ops


def _corrupt(path: Path, err: BaseException) -> UserError:
    detail = one_line(err) or type(err).__name__
    return UserError(
        f"cannot read {path} as a PyTorch file ({detail}); the file is corrupt, truncated or "
        "not a torch.save checkpoint: re-download or re-save it."
    )


def split_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Scalar]]:
    """Split a loaded ``.pt`` object into tensors and plain scalar values.

    Anything else (lists, nested dicts, arrays) is junk for an SAE checkpoint and is refused with
    the offending key named, so a wrong file fails loudly instead of half-loading.
    """
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path} holds a {type(obj).__name__}, not a dict of tensors; save the SAE's "
            "state dict (a dict of name -> tensor)."
        )
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Scalar] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise UserError(f"{path}: key {key!r} is not a string; keys must be tensor names.")
        if isinstance(value, torch.Tensor):
            _check_view(key, value, path)
            tensors[key] = value
        elif isinstance(value, _SCALAR_TYPES):
            scalars[key] = value
        else:
            raise UserError(
                f"{path}: key {key!r} holds a {type(value).__name__}, not a tensor or a plain "
                "str/int/float/bool value; remove it or re-save the file as safetensors."
            )
    if not tensors:
        raise UserError(f"{path} holds no tensors; it is not an SAE checkpoint: point --sae at "
                        "the SAE's weights file.")
    return tensors, scalars


def _check_view(key: str, tensor: torch.Tensor, path: Path) -> None:
    """Refuse a tensor that claims more elements than its storage holds (a stride-0 or
    overlapping view): a 3 KB file could otherwise ask for a TiB when made contiguous."""
    claimed = tensor.numel() * tensor.element_size()
    stored = tensor.untyped_storage().nbytes()
    if claimed > stored:
        raise UserError(
            f"{path}: tensor {key!r} is a view of shape {list(tensor.shape)} ({claimed} bytes) "
            f"over {stored} bytes of data; save real tensors (tensor.contiguous().clone(), or "
            "safetensors) instead of expanded views."
        )


def as_int(value: Any, label: str) -> int:
    """A config value that must be an integer (JSON may give 32, 32.0 or "32")."""
    try:
        number = float(value)
        if isinstance(value, bool) or not number.is_integer():
            raise ValueError
        return int(number)
    except (TypeError, ValueError):
        raise UserError(f"{label}={value!r} is not an integer; fix the config.") from None


def describe_dir(path: Path, limit: int = 8) -> str:
    """Short listing of a folder's entries for error messages."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not names:
        return "it is empty"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    shown = ", ".join(names[:limit]) + more
    return f"it contains {shown}"
