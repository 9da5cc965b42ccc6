"""The values a template reads, as paths: `{{ variables.customer_tier }}` reads
`("variables", "customer_tier")`, `{{ transcript[0].content }}` reads
`("transcript", "0", "content")`.

Found on the template's syntax tree, before it is compiled: each longest chain of
attribute and constant-item lookups that starts at a name. Jinja's
`meta.find_undeclared_variables` gives only the first name of each chain, and rendering
against a sample sees only the branches that sample takes; the tree has every lookup
the template can make. Names the template assigns itself (`{% set %}`, loop variables,
macro arguments) start no path: what they hold is not read from the call by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import nodes


@dataclass(frozen=True)
class FieldRead:
    """One chain of lookups: its path, the template line it is on, and whether its last
    step is a method being called (`summary.upper()`: `upper` names no value)."""

    path: tuple[str, ...]
    line: int
    called: bool = False

    @property
    def value_path(self) -> tuple[str, ...]:
        """The path of the value read (a called method's name left out)."""
        return self.path[:-1] if self.called and len(self.path) > 1 else self.path


def _step(node: nodes.Node) -> str | None:
    """The key of one lookup in a chain, None when it is no constant name or index."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
        if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
            return str(key)
    return None


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    steps: list[str] = []
    while not isinstance(node, nodes.Name):
        step = _step(node)
        if step is None:
            return None
        steps.append(step)
        node = node.node  # type: ignore[attr-defined]
    if node.ctx != "load":
        return None
    return (node.name, *reversed(steps))


def field_reads(tree: nodes.Template) -> tuple[FieldRead, ...]:
    """Every chain of lookups in `tree` starting at a name the template does not assign."""
    assigned = {name.name for name in tree.find_all(nodes.Name) if name.ctx in ("store", "param")}
    reads: list[FieldRead] = []
    stack: list[tuple[nodes.Node, bool, bool]] = [(tree, False, False)]
    while stack:
        node, inside_chain, called = stack.pop()
        if not inside_chain and isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Name):
            path = _chain(node)
            if path is not None and path[0] not in assigned:
                reads.append(FieldRead(path, node.lineno, called))
        for child in node.iter_child_nodes():
            continues_chain = child is getattr(node, "node", None) and _step(node) is not None
            is_callee = isinstance(node, nodes.Call) and child is node.node
            stack.append((child, continues_chain, is_callee))
    reads.sort(key=lambda read: (read.line, read.path))
    return tuple(dict.fromkeys(reads))
