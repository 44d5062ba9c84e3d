"""Byte-stable safetensors files: the same tensors and metadata give the same bytes in every
process.

`safetensors.torch.save` writes the ``__metadata__`` map in Rust hash-map order, which is
randomised per process, so the same SAE saved twice had two sha256 values: `--skip-completed`
never recognised a retrained SAE, and same-seed results differed in their sha256 fields. The
header is a JSON object followed by the data section, whose offsets are relative to the end of
the header, so re-serialising the header with sorted keys and compact separators (padded with
spaces to a multiple of 8 bytes, as the format asks) leaves the data untouched.
"""

from __future__ import annotations

import json
import struct

import torch
from safetensors.torch import save

_ALIGN = 8


def canonical_header(data: bytes) -> bytes:
    """`data` (a safetensors file) with its JSON header rewritten in canonical form."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * (-len(text) % _ALIGN)
    return struct.pack("<Q", len(text)) + text + data[8 + length :]


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """`safetensors.torch.save(tensors, metadata)` with a canonical header."""
    return canonical_header(save(tensors, metadata=metadata))
