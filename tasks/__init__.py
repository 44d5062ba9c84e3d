"""Task modules, shipped as `sae_bench.tasks`. Import them only under that name."""

from __future__ import annotations

from sae_bench.errors import unknown_name


def _ioi():
    from sae_bench.tasks.ioi import IOITask

    return IOITask()


# Factories, so importing the registry does no work.
_TASKS = {"ioi": _ioi}


def get_task(name: str):
    if name not in _TASKS:
        raise unknown_name("task", name, _TASKS)
    return _TASKS[name]()
