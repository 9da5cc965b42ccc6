"""The layout's promise (DESIGN.md section 2), checked on the source: imports run only
downward through the layers, and no modules import each other in a circle. Every
import counts, also one inside a function or under `TYPE_CHECKING`: either would let a
cycle or an upward dependency hide."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Highest first: a package may import those below it, never one above.
LAYERS = (
    "router.cli",
    "router.web",
    "router.revring",
    "router.engine",
    "router.config",
    "sinks",
    "router.operators",
    "router.rules",
    "router.core",
    "router.store",
)
ANYONE_MAY_IMPORT = {"router"}  # the root package: its version, nothing else


def module_files() -> dict[str, Path]:
    found = {}
    for top in ("router", "sinks"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def imported_modules(name: str, path: Path) -> Iterator[str]:
    """Every module of ours that `name` imports, wherever in the file the import stands;
    `from package import name` counts as importing the submodule when there is one."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target in MODULES and target != name:
                yield target


GRAPH = {name: set(imported_modules(name, path)) for name, path in MODULES.items()}


def layer_of(module: str) -> int | None:
    for rank, layer in enumerate(LAYERS):
        if module == layer or module.startswith(f"{layer}."):
            return rank
    return None


def test_every_module_belongs_to_a_layer() -> None:
    loose = [
        name
        for name in MODULES
        if layer_of(name) is None and name not in ANYONE_MAY_IMPORT | {"router.__main__"}
    ]
    assert loose == []


def test_imports_run_only_downward() -> None:
    upward = []
    for name, targets in GRAPH.items():
        own = layer_of(name)
        if own is None:
            continue
        for target in targets:
            rank = layer_of(target)
            if rank is not None and rank < own:
                upward.append(f"{name} -> {target}")
    assert sorted(upward) == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm,
    iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return found


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert cycles(GRAPH) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list) -> None:
    assert cycles(graph) == expected


def test_the_walk_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    # `open_store` imports the SQLite connector inside the function; verify mode imports
    # the operators' controls only for type checking
    assert "router.store.sqlite" in GRAPH["router.store"]
    assert "router.operators" in GRAPH["router.revring.verify"]
