"""The engine knows no screen: only vqstudio/app imports Qt, pyqtgraph or sounddevice."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vqstudio"
GUI_MODULES = {"PySide6", "pyqtgraph", "sounddevice", "shiboken6"}
# app -> (diagnose, experiments) -> train -> model -> audio; config and errors are leaves.
LAYER = {"audio": 0, "model": 1, "train": 2, "experiments": 3, "diagnose": 3, "app": 4}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_gui_imports_outside_app():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "app":
            continue
        bad = {n for n in _imports(path) if n.split(".")[0] in GUI_MODULES}
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE)}: {sorted(bad)}")
    assert not offenders, "GUI imports outside vqstudio/app: " + "; ".join(offenders)


def test_dependencies_point_one_way():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2 or parts[0] not in LAYER:
            continue
        mine = LAYER[parts[0]]
        for name in _imports(path):
            bits = name.split(".")
            if bits[0] == "vqstudio" and len(bits) > 1 and bits[1] in LAYER:
                if LAYER[bits[1]] > mine:
                    offenders.append(f"{'/'.join(parts)} imports {name}")
    assert not offenders, "; ".join(offenders)
