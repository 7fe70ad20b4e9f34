"""The layers of docs/ARCHITECTURE.md: the core imports neither napari / Qt nor the layers above it."""

from __future__ import annotations

import ast
from importlib.metadata import version
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "napari_unet_maskrcnn"
ABOVE_THE_CORE = ("napari_unet_maskrcnn.api", "napari_unet_maskrcnn.cli", "napari_unet_maskrcnn.napari_plugin")
GUI = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path`` (relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            # "from .. import api" names a module too
            found += [(node.lineno, module)] + [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return found


CORE_FILES = sorted((PACKAGE / "core").rglob("*.py"))


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_imports_no_gui_and_nothing_above_it(path):
    bad = []
    for line, module in imported_modules(path):
        if module == "napari_unet_maskrcnn" or module.startswith(ABOVE_THE_CORE):
            bad.append((line, module))
        elif module.split(".")[0] in GUI:
            bad.append((line, module))
    assert not bad, bad


def test_the_recorded_version_comes_from_the_package_metadata():
    from napari_unet_maskrcnn.core.training.provenance import software

    assert software()["napari_unet_maskrcnn"] == version("napari-unet-maskrcnn")
