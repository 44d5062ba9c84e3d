"""Atomic writes: a crash or a bad input never leaves a half-written or clobbered output."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _publish(tmp: str | Path, path: Path | str) -> None:
    """Move a finished temp file into place with ordinary permissions (mkstemp makes it 0600,
    which would hide results and SAE files from collaborators)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Every file the project writes goes through here (safetensors via `safetensors.torch.save`,
    which returns bytes): temp file in the target folder, then one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        _publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
