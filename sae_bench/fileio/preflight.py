"""Checks that an output can be written, run before any expensive work.

A run that finds out only at the end that `--out` is unwritable has wasted minutes and, worse,
may already have filled the cache. Each check walks up to the nearest folder that exists, makes
sure nothing on the way is a file, and proves that folder writable by creating and deleting one
probe file there: permission bits alone cannot tell (root passes every `os.access` check, and
``/proc`` refuses new files whatever its mode says). Nothing is left behind, folders included.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sae_bench.errors import UserError


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_creatable(path: Path, option: str) -> None:
    """Every missing folder down to `path` can be created, and files written in it."""
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise UserError(f"cannot write {option} {path}: {base} is a file, not a folder; choose a "
                        "path whose parent folders are folders.")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=f".sae-bench-probe.{os.getpid()}.",
                                   suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write {option} {path}: {base} does not accept new files "
                        f"({exc.strerror or exc.__class__.__name__}); choose a writable "
                        "folder.") from None
    os.close(fd)
    os.remove(probe)


def check_output_dir(path: Path, option: str) -> None:
    """`path` is, or can become, a folder we can write files into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file, not a folder; give a folder path (it is "
                        "created if missing).")
    _check_creatable(path, option)


def check_output_file(path: Path, option: str, *, example: str = "out.json") -> None:
    """`path` can be (over)written as a regular file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file path such as "
                        f"{path / example}.")
    if path.exists() and not path.is_file():
        raise UserError(f"{option} {path} exists and is not a regular file (a device, FIFO or "
                        "socket); give the path of a regular file.")
    _check_creatable(path.parent, option)
