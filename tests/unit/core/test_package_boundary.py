"""The library holds only the pipeline: nothing in src/genai_flywheel depends on the demo package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CORE = ROOT / "src" / "genai_flywheel"
DEMO = "flywheel_demo"


def _is_demo(module: str | None) -> bool:
    return bool(module) and (module == DEMO or module.startswith(f"{DEMO}."))


def demo_imports(source: str, filename: str = "<string>") -> list[str]:
    """Every ``import``/``from ... import`` of the demo package in ``source``, at any depth, plus module
    paths to it given as strings (``importlib.import_module("flywheel_demo.x")``, ``"flywheel_demo.x:f"``)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [f"{filename}:{node.lineno}: import {a.name}" for a in node.names if _is_demo(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_demo(node.module):
            found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            head = node.value.split(":", 1)[0].strip()
            if _is_demo(head) and " " not in head:
                found.append(f"{filename}:{node.lineno}: string {node.value!r}")
    return found


def test_the_scan_finds_every_kind_of_demo_import() -> None:
    source = (
        "import flywheel_demo\n"
        "import os, flywheel_demo.app as app\n"
        "def f():\n"
        "    from flywheel_demo.simulate import simulate\n"
        "    return importlib.import_module('flywheel_demo.run')\n"
        "from flywheel_demos import x\n"  # another package whose name merely starts alike
        "from genai_flywheel import loop\n"
    )
    assert [line.split(": ", 1)[1] for line in demo_imports(source)] == [
        "import flywheel_demo",
        "import flywheel_demo.app",
        "from flywheel_demo.simulate import ...",
        "string 'flywheel_demo.run'",
    ]


def test_the_core_imports_nothing_of_the_demo() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 50  # the scan reads the real tree
    found = [hit for path in modules for hit in demo_imports(path.read_text("utf-8"), str(path.relative_to(ROOT)))]
    assert found == [], "the library must not depend on the demo package:\n" + "\n".join(found)
