"""Reading small user-named text files (results, golden files, manifests) safely.

`Path.read_text` on a symlink to /dev/zero reads until memory runs out, and on a FIFO waits
forever. These readers look at what the path is before opening it, and never read more than a
bound well above any real result document.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from sae_bench.errors import UserError

# A results.json of a 16-node bundle is ~1 MB; 256 MiB leaves room for anything real.
MAX_TEXT_BYTES = 256 << 20


def require_regular_file(path: Path, what: str) -> int:
    """The file's size; `UserError` unless `path` (followed through links) is a regular file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}; check the path and that the file "
                        "exists.") from None
    except OSError as exc:
        raise UserError(f"cannot open {what} {path} ({exc.strerror or exc}); check the path and "
                        "its permissions.") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {path} is a folder; give the path of a file.")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {path} is not a regular file (a device, FIFO or socket); give "
                        "the path of a regular file.")
    return st.st_size


def read_text_bounded(path: Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """A regular file's UTF-8 text, refusing files larger than `limit` bytes."""
    path = Path(path)
    size = require_regular_file(path, what)
    if size > limit:
        raise UserError(f"{what} {path} is {size} bytes, more than the {limit >> 20} MiB any "
                        "real one has; check that this is the right file.")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise UserError(f"cannot read {what} {path} ({exc.strerror or exc}); check its "
                        "permissions.") from None
    if len(data) > limit:  # it grew while we looked
        raise UserError(f"{what} {path} is larger than {limit >> 20} MiB; check that this is the "
                        "right file.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text; give the JSON file itself.") from None


def read_json_bounded(path: Path, what: str) -> Any:
    """Parsed JSON of a bounded regular file; bad JSON is a `UserError` with the fix."""
    text = read_text_bounded(path, what)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise UserError(f"{what} {path} is not valid JSON ({detail}); fix or re-create "
                        "it.") from None
