"""The library under ``custom_components/mam_guard/lib`` stays free of Home Assistant."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "custom_components" / "mam_guard" / "lib"
MODULES = sorted(LIB.glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import``/``from`` statement names, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            names.add("." * node.level + (node.module or ""))  # reaches outside lib/
    return names


def test_library_has_modules_and_marker() -> None:
    assert len(MODULES) >= 10
    assert (LIB / "py.typed").exists()


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_no_home_assistant_imports(module: Path) -> None:
    offending = {
        name
        for name in imported_modules(module)
        if name.split(".")[0] in {"homeassistant", "custom_components"} or name.startswith("..")
    }
    assert not offending, f"{module.name} imports {sorted(offending)}"


def test_the_check_catches_an_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f():\n    from homeassistant.core import HomeAssistant\n    from .. import const\n"
    )
    assert {"homeassistant.core", ".."} <= imported_modules(bad)
