"""Figures every benchmark records, printed together at the end of the run.

A benchmark adds its figures with the `figures` fixture (they also go to pytest-benchmark's
`extra_info`, so `--benchmark-autosave` keeps them with the timings); `pytest_terminal_summary`
prints them whether or not output capture is on.
"""

from __future__ import annotations

import pytest

_RECORDED: list[tuple[str, dict]] = []


@pytest.fixture
def figures(request, benchmark):
    """Call with a dict of figures for this test: kept in extra_info and printed at the end."""

    def record(values: dict) -> None:
        benchmark.extra_info.update(values)
        _RECORDED.append((request.node.name, dict(values)))

    return record


def pytest_terminal_summary(terminalreporter):
    if not _RECORDED:
        return
    terminalreporter.section("benchmark figures")
    for name, values in _RECORDED:
        terminalreporter.write_line(name)
        for key, value in values.items():
            terminalreporter.write_line(f"    {key}: {value}")
