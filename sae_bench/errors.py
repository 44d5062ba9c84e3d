"""One exception type for every problem the user can fix.

The CLI turns a `UserError` into a single line on stderr and exit code 2 (no traceback), so the
message must name the problem *and* the fix.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable


class UserError(Exception):
    """Bad input: a malformed file, an unknown name, a missing model. Exit code 2 in the CLI."""

    exit_code = 2


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UserError:
    """A "did you mean" error for registries (tasks, models, formats, architectures, hooks...)."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UserError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known)}.")


def run_script(main: Callable[[], int], prog: str) -> int:
    """The exit code of a `python -m` entry point outside the `sae-bench` CLI (recipes,
    diagnostics): a `UserError` becomes one line on stderr and exit code 2, as in the CLI."""
    try:
        return main()
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
