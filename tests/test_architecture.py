"""The shape of the code: imports point one way (no cycle among the modules), no import hides inside a function,
providers stand alone, and no module grows past the size a reader can hold (the core naming no vendor is checked
in test_plugins.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "providers")
#: modules longer than this are split (the project's convention: "none over ~400 lines")
MAX_LINES = 420


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


ALL = {name: path for package in PACKAGES for name, path in _modules(package).items()}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every module of `known` this file imports, wherever the import stands (module level, function,
    TYPE_CHECKING block): `from a.b import c` is an edge to `a.b.c` when that is a module, else to `a.b`."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in known:
                    targets.add(full)
                elif node.module in known:
                    targets.add(node.module)
    return targets


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_module_graph_has_no_cycle() -> None:
    known = set(ALL)
    graph = {name: _imports(path, known) - {name} for name, path in ALL.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_import_inside_a_function(name: str) -> None:
    """An import inside a function or a TYPE_CHECKING block is how a cycle hides; every import is at the top."""
    tree = ast.parse(ALL[name].read_text())
    top_level = {id(node) for node in tree.body}
    hidden = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top_level
    ]
    assert hidden == [], f"{ALL[name]}: imports not at module level on lines {hidden}"


def test_providers_do_not_import_each_other() -> None:
    for name, path in ALL.items():
        if not name.startswith("providers."):
            continue
        own = name.split(".")[1]
        others = {m for m in ALL if m.startswith("providers.") and m.split(".")[1] != own}
        assert not _imports(path, others), f"{name} imports another provider"


@pytest.mark.parametrize("name", sorted(ALL))
def test_modules_stay_small(name: str) -> None:
    lines = len(ALL[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{ALL[name]} has {lines} lines; split it by responsibility"
