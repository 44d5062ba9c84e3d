"""Atomic writes: a crash or a bad input never leaves a half-written or clobbered output.

A temp file carries the writer's PID in its name (``.NAME.PID.RANDOM.tmp``), so that a later
run can tell the leftovers of a killed process (`remove_stale_temp_files`) from the temp file of
a process still writing next to it (two runs may share one cache folder).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.tmp$")


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        _publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or not a PID we can judge: leave its file alone
    return True


def remove_stale_temp_files(folder: Path | str) -> list[Path]:
    """Delete the temp files that killed writers left in `folder` (not recursive); the ones
    removed. A temp file of a live process is kept: it is about to become a real file."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMP.match(entry.name)
        if match and entry.is_file() and not _alive(int(match.group("pid"))):
            try:
                entry.unlink()
            except FileNotFoundError:
                continue  # another run cleaned it first
            removed.append(entry)
    return removed
