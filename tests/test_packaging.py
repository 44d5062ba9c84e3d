"""pyproject lists packages explicitly (tasks/ is mapped to sae_bench.tasks): a package folder
missing from the list would be left out of the wheel, and every import of it would fail there."""

from __future__ import annotations

from pathlib import Path

import pytest

# The standard library reads TOML from Python 3.11 on; the project supports 3.10 too.
tomllib = pytest.importorskip("tomllib", reason="needs Python >= 3.11 (tomllib)")

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for dotted, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([dotted, *parts]))
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert listed <= found, f"listed but not a package folder: {sorted(listed - found)}"


def test_the_console_script_names_a_function_that_exists():
    import importlib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["sae-bench"]
    module, _, name = target.partition(":")
    assert callable(getattr(importlib.import_module(module), name))
