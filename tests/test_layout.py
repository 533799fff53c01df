"""The layout DEVELOPERS.md describes: imports go down, never round, never sideways.

The import graph is read from the source (every `import`, at module level or inside a
function, except under `if TYPE_CHECKING:`), so that it holds for what runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from goldens import ROOT

PACKAGE = ROOT / "convert"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, package: str) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # type-only imports do not run
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                )
            yield base
            # `from convert.x import y` may import the module convert.x.y
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Each of our modules, with the modules of ours it imports."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text("utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = {m for m in _imports(tree, package) if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_readers_and_writers_never_import_each_other() -> None:
    graph = import_graph()
    for name, imported in graph.items():
        if name.startswith("convert.readers"):
            assert not {m for m in imported if m.startswith("convert.writers")}, name
        if name.startswith("convert.writers"):
            assert not {m for m in imported if m.startswith("convert.readers")}, name


def test_no_writer_reaches_the_network() -> None:
    graph = import_graph()

    def reaches(name: str, seen: set[str]) -> set[str]:
        for target in graph[name] - seen:
            seen.add(target)
            reaches(target, seen)
        return seen

    for name in graph:
        if name.startswith("convert.writers"):
            below = reaches(name, set())
            assert not {
                m for m in below if m.startswith(("convert.net", "convert.media.intake"))
            }, name


def test_nothing_hands_state_over_through_a_thread_local() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert "threading.local" not in path.read_text("utf-8"), path
