"""The house stays readable from the doorway: docstrings that say what a module owns, sizes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    p for package in ("icp_sync", "connectors") for p in (ROOT / package).rglob("*.py")
)
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 400
# One cohesive exception: the synthetic CRM generator plants one latent fit per account and
# draws every table from it; split, its parts would only pass that state around.
LONG_MODULES = {"icp_sync/sandbox/generate.py"}


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_every_module_says_what_it_owns(path: Path) -> None:
    """Each module opens with a docstring whose first line is one sentence."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{_name(path)} has no module docstring"
    first = docstring.splitlines()[0]
    assert first.rstrip().endswith((".", ":", ")")), first


def test_no_module_is_too_long_to_read() -> None:
    """No module over 500 lines, except the one named cohesive family."""
    long = {
        _name(p): n
        for p in MODULES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert set(long) <= LONG_MODULES, long


def test_no_class_is_too_long_to_read() -> None:
    """No class over 400 lines."""
    long = [
        f"{_name(p)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for p in MODULES
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert long == []


def _readme_layout() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Layout", 1)[1].split("```", 2)[1]


def _layout_modules() -> list[Path]:
    return [
        path
        for package in ("icp_sync", "connectors")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.stem != "__init__" and not path.stem.startswith("_")
    ]


@pytest.mark.parametrize("path", _layout_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_the_readme_layout_names_every_module(path: Path) -> None:
    """Each public module and its folder appear in the README's Layout, so it cannot go stale."""
    layout = _readme_layout()
    folder = path.parent.name + "/"
    assert folder in layout, f"README Layout: no entry for the folder {folder}"
    assert re.search(rf"\b{re.escape(path.stem)}\b", layout), f"README Layout omits {path.stem}"


def test_the_readme_layout_names_no_missing_module() -> None:
    """Every ``name.py`` the README's Layout mentions exists in the tree."""
    existing = {path.name for path in _layout_modules()}
    named = set(re.findall(r"\b([a-z_]+\.py)\b", _readme_layout()))
    assert sorted(named - existing) == []
