"""Imports flow one way: no module of `sae_bench` (or `sae_bench.tasks`) imports itself back
through others, the CLI is imported by nobody below it, and report drawing takes plain rows.

The graph is built with `ast` from the source, so it sees every import a run could execute:
module level, inside functions (the CLI's lazy imports) and under `TYPE_CHECKING` (a type-only
import back is still a cycle for a reader, and it stops the moment someone needs it at run time).
An edge goes to the module an import names: `from sae_bench.report import plots` is an edge to
`sae_bench.report.plots`, `from sae_bench.tasks import get_task` one to the package
`sae_bench.tasks` (its `__init__`). Importing `a.b.c` also runs the `__init__` of `a` and `a.b`
first, so those are edges too, except the importer's own parent packages (already running when
it runs: a package `__init__` that re-exports its members is not a cycle with them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folders and the dotted name each is imported as (tasks/ ships as sae_bench.tasks).
SOURCES = {ROOT / "sae_bench": "sae_bench", ROOT / "tasks": "sae_bench.tasks"}


def _modules(sources: dict[Path, str]) -> dict[str, Path]:
    out = {}
    for folder, dotted in sources.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([dotted, *parts])] = path
    return out


def _ancestors(dotted: str) -> set[str]:
    parts = dotted.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(sources: dict[Path, str] = SOURCES) -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in its source)."""
    modules = _modules(sources)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    head = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*head, base] if base else head)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    deps.add(sub if sub in modules else base)
        own = _ancestors(name)
        deps |= {a for d in deps for a in _ancestors(d) if a not in own}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None; depth-first with colours."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("extra", [
    # function-level: the golden helper calling the CLI was cycle cli -> ... -> golden -> cli
    "def f():\n    from sae_bench.cli.main import main\n",
    # type-only: sae/base <-> sae/architectures went through TYPE_CHECKING
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sae_bench.cli import main\n",
])
def test_a_cycle_brought_back_is_found(tmp_path, extra):
    """The check must fail on the cycles this layout removed, however the import is written."""
    pkg = tmp_path / "sae_bench"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "results").mkdir()
    for init in (pkg, pkg / "cli", pkg / "results"):
        (init / "__init__.py").write_text("")
    (pkg / "cli" / "main.py").write_text("from sae_bench.results import golden\n")
    (pkg / "results" / "golden.py").write_text(extra)
    cycle = find_cycle(import_graph({pkg: "sae_bench"}))
    assert cycle == ["sae_bench.cli.main", "sae_bench.results.golden", "sae_bench.cli.main"]
    (pkg / "results" / "golden.py").write_text("import json\n")
    assert find_cycle(import_graph({pkg: "sae_bench"})) is None


def test_only_the_cli_imports_the_cli():
    """Outputs (results, goldens, reports) never import the CLI: it is the top room."""
    offenders = sorted(f"{m} -> {d}" for m, deps in import_graph().items()
                       if not m.startswith("sae_bench.cli") for d in deps
                       if d == "sae_bench.cli" or d.startswith("sae_bench.cli."))
    assert not offenders, offenders


def test_report_drawing_takes_plain_rows():
    """Tables, plots and pages take `report.rows` data; only `report.groups` reads documents."""
    drawing = ("sae_bench.report.rows", "sae_bench.report.structure", "sae_bench.report.tables",
               "sae_bench.report.plots", "sae_bench.report.style", "sae_bench.report.html",
               "sae_bench.report.text")
    graph = import_graph()
    offenders = sorted(f"{m} -> {d}" for m in drawing for d in graph[m]
                       if not d.startswith("sae_bench.report"))
    assert not offenders, offenders
