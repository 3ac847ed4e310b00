"""genai_flywheel imports one way: no two modules, and no two subpackages, import each other.

The graph is read from the source (``ast``), not from ``sys.modules``: every import counts, at module level,
inside functions and under ``TYPE_CHECKING`` alike. A lazy import inside a function hides a cycle from
Python's import machinery, not from the design.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "genai_flywheel"

# module -> imported module -> where ("path:line")
Graph = dict[str, dict[str, list[str]]]


def _modules(src: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    found = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def import_graph(src: Path, package: str = PACKAGE) -> Graph:
    """Which module of ``package`` imports which, from every ``import`` statement anywhere in its source.

    ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``; relative imports
    are resolved; imports of other packages are ignored.
    """
    modules = _modules(src, package)
    graph: Graph = {name: defaultdict(list) for name in modules}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name][target].append(f"{path.relative_to(src)}:{node.lineno}")
    return graph


def subpackage_graph(graph: Graph, package: str = PACKAGE) -> Graph:
    """The graph between ``package``'s direct children (``a.traces.x`` -> ``a.traces``), intra-child edges
    dropped."""

    def top(name: str) -> str:
        return ".".join(name.split(".")[: package.count(".") + 2])

    grouped: Graph = defaultdict(lambda: defaultdict(list))
    for source, targets in graph.items():
        for target, where in targets.items():
            if top(source) != top(target):
                grouped[top(source)][top(target)].extend(where)
    return grouped


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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


def _explain(graph: Graph, components: list[list[str]]) -> str:
    lines = []
    for component in components:
        lines.append(" <-> ".join(component))
        for source in component:
            for target in sorted(set(graph[source]) & set(component)):
                lines.append(f"    {source} -> {target} at {', '.join(dict.fromkeys(graph[source][target]))}")
    return "\n".join(lines)


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph(ROOT / "src")
    assert len(graph) > 50  # the walk found the package
    found = cycles(graph)
    assert not found, "import cycles between modules:\n" + _explain(graph, found)


def test_no_two_subpackages_import_each_other() -> None:
    graph = subpackage_graph(import_graph(ROOT / "src"))
    found = cycles(graph)
    assert not found, "import cycles between subpackages:\n" + _explain(graph, found)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "src"


def test_checker_sees_function_level_relative_and_type_checking_imports(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a/__init__.py": "",
            "pkg/a/one.py": "def f():\n    from pkg.b.two import g\n",
            "pkg/a/three.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import one\n",
            "pkg/b/__init__.py": "from pkg.b.two import g\n",
            "pkg/b/two.py": "import json\nfrom ..a import three\ndef g():\n    pass\n",
        },
    )
    graph = import_graph(src, "pkg")
    assert graph["pkg.a.one"] == {"pkg.b.two": ["pkg/a/one.py:2"]}
    assert set(graph["pkg.a.three"]) == {"pkg.a.one"}
    assert set(graph["pkg.b.two"]) == {"pkg.a.three"}  # json is not ours
    assert cycles(graph) == [["pkg.a.one", "pkg.a.three", "pkg.b.two"]]
    assert cycles(subpackage_graph(graph, "pkg")) == [["pkg.a", "pkg.b"]]


def test_checker_finds_a_cycle_only_between_subpackages(tmp_path: Path) -> None:
    # No module cycle, but a imports b and b imports a: the layering is still circular.
    src = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a/__init__.py": "",
            "pkg/a/x.py": "from pkg.b.y import Y\n",
            "pkg/a/z.py": "Z = 1\n",
            "pkg/b/__init__.py": "",
            "pkg/b/y.py": "Y = 1\ndef f():\n    from pkg.a import z\n",
        },
    )
    graph = import_graph(src, "pkg")
    assert cycles(graph) == []
    assert cycles(subpackage_graph(graph, "pkg")) == [["pkg.a", "pkg.b"]]


def imports_of(path: Path, package: str) -> list[tuple[int, bool]]:
    """(line, inside a function) of every import of ``package`` or its submodules in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    in_function = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(n == package or n.startswith(package + ".") for n in names):
            found.append((node.lineno, id(node) in in_function))
    return sorted(found)


def test_openai_is_imported_only_inside_the_judge_adapter() -> None:
    # The judges reach the endpoint through MLflow's gateway adapter over HTTP and need no openai package
    # today; should the judge adapter ever want it, it imports it when called, and nothing else does.
    allowed = ROOT / "src" / PACKAGE / "scoring" / "judges.py"
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in ("src", "plugins", "dags")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, in_function in imports_of(path, "openai")
        if path != allowed or not in_function
    ]
    assert not found, f"openai imported outside a function of {allowed.relative_to(ROOT)}: {found}"


def test_imports_of_tells_module_level_from_function_level(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "import openai.types\ntry:\n    from openai import OpenAI\nexcept ImportError:\n    pass\n"
        "import openaix\ndef f():\n    import openai\n",
        encoding="utf-8",
    )
    assert imports_of(path, "openai") == [(1, False), (3, False), (8, True)]
