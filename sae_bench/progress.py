"""Progress reporting on stderr: a line per step with its duration, and tqdm bars for loops.

Passed down explicitly (no global state); `Progress(enabled=False)` is silent for tests.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from tqdm.auto import tqdm


class Progress:
    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr

    @contextmanager
    def step(self, what: str):
        """Report a step when it has finished, so a failing step leaves only its error line."""
        start = time.perf_counter()
        yield
        if self.enabled:
            print(f"  {what}: {time.perf_counter() - start:.1f}s", file=self.stream, flush=True)

    def bar(self, iterable, desc: str, total: int | None = None):
        return tqdm(
            iterable, desc=desc, total=total, disable=not self.enabled, file=self.stream,
            leave=False, dynamic_ncols=True,
        )
