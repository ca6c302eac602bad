"""The import graph of the package: modules of icp_sync and connectors import no circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("icp_sync", "connectors")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(
    tree: ast.AST, module: str, is_package: bool, known: set[str] | dict[str, Path]
) -> Iterator[str]:
    """Every module named by an import (lazy ones too), except under ``if TYPE_CHECKING``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            if all(name in known for name in submodules):
                yield from submodules
            else:
                yield base
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from a import b`` counts ``a.b`` when
    ``b`` is a module, else ``a``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set(_imported(tree, name, path.name == "__init__.py", modules))
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        pytest.param({"a": {"b"}, "b": set()}, [], id="chain"),
        pytest.param({"a": {"b"}, "b": {"a"}}, [["a", "b"]], id="two-module-circle"),
        pytest.param(
            {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]], id="long-circle"
        ),
    ],
)
def test_cycles_finds_every_circle(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    """The cycle finder reports each circle once, and nothing for a graph without one."""
    assert cycles(graph) == expected


def test_import_graph_sees_lazy_and_relative_imports() -> None:
    """Imports inside functions count: a lazy import still closes a circle at run time."""
    graph = import_graph()
    assert "icp_sync.sandbox.service" in graph
    assert "icp_sync.sandbox.salesforce.org" in graph["icp_sync.sandbox.salesforce.load"]
    assert "icp_sync.sandbox.service" in graph["icp_sync.cli.sandbox"]  # inside a command


def test_no_import_cycles() -> None:
    """No module of icp_sync or connectors imports itself back through other modules."""
    assert cycles(import_graph()) == []


def test_sandbox_imports_no_circle() -> None:
    """The sandbox in particular (no known exceptions): its loaders, state and routes."""
    graph = import_graph()
    sandbox = {m: {t for t in ts if t.startswith("icp_sync.sandbox")} for m, ts in graph.items()}
    assert [c for c in cycles(sandbox) if any(m.startswith("icp_sync.sandbox") for m in c)] == []


# Top-level modules of icp_sync that belong to the shell; every other one is the pure core.
SHELL = {"__init__", "__main__", "config", "sections", "log", "console", "demo", "daemon"}
SHELL |= {"web", "metrics", "progress"}
OUTSIDE_THE_CORE = ("connectors", "sqlalchemy", "simple_salesforce", "hubspot", "apscheduler")
SHELL_PACKAGES = ("store", "pipeline", "alerts", "sandbox", "report", "cli", "config")


def test_the_core_loads_no_shell_at_run_time() -> None:
    """Importing every core module loads no store, connector, pipeline, CRM or database code."""
    core = sorted(p.stem for p in (ROOT / "icp_sync").glob("*.py") if p.stem not in SHELL)
    script = (
        "import importlib, sys\n"
        f"for name in {core!r}: importlib.import_module('icp_sync.' + name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    shell = tuple(f"icp_sync.{package}" for package in SHELL_PACKAGES)
    leaked = [
        name for name in loaded if name.split(".")[0] in OUTSIDE_THE_CORE or name.startswith(shell)
    ]
    assert len(core) > 20
    assert leaked == []
