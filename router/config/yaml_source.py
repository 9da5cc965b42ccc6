"""Reading rules.yaml into plain data while remembering where every node came from.

`load_yaml_with_positions` returns the document as dicts, lists and scalars, plus
a map from each node's path (`("sinks", "crm", "url")`) to its line and column,
so that every later error can point at `FILE:LINE:COL`. `${VAR}` and
`${VAR:-default}` are replaced from the environment in string values while
reading (`$${` writes a literal `${`); an unset variable is an error at its node.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based

    @classmethod
    def of(cls, node: yaml.Node) -> Position:
        return cls(node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass(frozen=True)
class SourceError:
    """One problem, located: rendered as `FILE:LINE:COL: message`."""

    file: str
    position: Position
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.position.line}:{self.position.column}: {self.message}"


@dataclass
class YamlDocument:
    data: Any
    file: str
    values: dict[Path_, Position] = field(default_factory=dict)
    keys: dict[Path_, Position] = field(default_factory=dict)
    errors: list[SourceError] = field(default_factory=list)
    # Plain scalars YAML 1.1 reads as base-60 numbers (17:30 is 1050), as written.
    sexagesimal: dict[Path_, str] = field(default_factory=dict)
    # The environment variables each string value names (`${VAR}`, `${VAR:-default}`).
    variables: dict[Path_, tuple[str, ...]] = field(default_factory=dict)

    def as_written(self, path: Path_, value: Any) -> Any:
        """`value` (the node at `path`) with every base-60 number in it back as the text
        written, for settings whose `HH:MM` or `a:b` values may come unquoted."""
        if isinstance(value, dict):
            return {key: self.as_written((*path, key), item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.as_written((*path, index), item) for index, item in enumerate(value)]
        return self.sexagesimal.get(path, value) if isinstance(value, int) else value

    def position_of(self, path: Path_, *, key: bool = False) -> Position:
        """The position of the node at `path`, or of its nearest ancestor that exists."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Position(1, 1))

    def error(self, path: Path_, message: str, *, key: bool = False) -> SourceError:
        return SourceError(self.file, self.position_of(path, key=key), message)


_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def interpolate(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace `${VAR}` / `${VAR:-default}`; return the text and the unset names."""
    unset: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                unset.append(name)
                return ""
            return default
        return value

    return _VARIABLE.sub(replace, text), unset


def named_variables(text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment variables `text` names that are set, with their values: all that
    reading `text` again elsewhere needs of the environment."""
    names = {match.group(1) for match in _VARIABLE.finditer(text) if match.group(1)}
    return {name: environ[name] for name in sorted(names) if name in environ}


MAX_NODES = 100_000  # aliases can make a small file expand enormously ("billion laughs")


class _TooLarge(Exception):
    pass


class _Builder:
    def __init__(self, document: YamlDocument, environ: Mapping[str, str]) -> None:
        self.document = document
        self.environ = environ
        self.loader = yaml.SafeLoader("")  # one per document: its cache lives as long as this
        self.nodes = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge
        self.document.values[path] = Position.of(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, index)) for index, child in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.document.errors.append(
                    SourceError(
                        self.document.file,
                        Position.of(key_node),
                        "YAML merge keys (<<) are not supported",
                    )
                )
                continue
            key = self._plain_scalar(key_node)
            if isinstance(key, list | dict):
                self.document.errors.append(
                    SourceError(
                        self.document.file, Position.of(key_node), "a key must be a plain value"
                    )
                )
                continue
            child_path = (*path, key)
            if key in result:
                first = self.document.keys[child_path]
                self.document.errors.append(
                    SourceError(
                        self.document.file,
                        Position.of(key_node),
                        f"duplicate key {key!r} (first defined at line {first.line})",
                    )
                )
                continue
            self.document.keys[child_path] = Position.of(key_node)
            result[key] = self.build(value_node, child_path)
        return result

    def _plain_scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return [] if isinstance(node, yaml.SequenceNode) else {}
        if node.tag == "tag:yaml.org,2002:str":
            return self.loader.construct_scalar(node)
        return self._construct_located(node)

    def _construct_located(self, node: yaml.Node) -> Any:
        """The scalar's value; an unknown tag or a bad `!!int` is an error at the node."""
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.document.errors.append(
                SourceError(self.document.file, Position.of(node), f"invalid value: {problem}")
            )
            return None

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        value = self._construct_located(node)
        if isinstance(value, int) and ":" in node.value:
            self.document.sexagesimal[path] = node.value
        if isinstance(value, str) and "$" in value:
            named = tuple(
                dict.fromkeys(m.group(1) for m in _VARIABLE.finditer(value) if m.group(1))
            )
            if named:
                self.document.variables[path] = named
            value, unset = interpolate(value, self.environ)
            for name in unset:
                self.document.errors.append(
                    SourceError(
                        self.document.file,
                        Position.of(node),
                        f"environment variable {name} is not set "
                        f"(set it, or give a default: ${{{name}:-default}})",
                    )
                )
        return value


def load_yaml_with_positions(
    text: str, file: str, environ: Mapping[str, str] | None = None
) -> YamlDocument:
    """Parse one YAML document; syntax problems land in `errors`, not in exceptions."""
    document = YamlDocument(data=None, file=file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        document.errors.append(SourceError(file, position, f"invalid YAML: {problem}{context}"))
        return document
    except yaml.YAMLError as exc:
        document.errors.append(SourceError(file, Position(1, 1), f"invalid YAML: {exc}"))
        return document
    except RecursionError:  # PyYAML reads nesting by recursing
        document.errors.append(SourceError(file, Position(1, 1), "invalid YAML: nested too deep"))
        return document
    if root is None:
        document.data = {}
        document.values[()] = Position(1, 1)
        return document
    builder = _Builder(document, os.environ if environ is None else environ)
    try:
        document.data = builder.build(root, ())
    except RecursionError:
        document.errors.append(SourceError(file, Position(1, 1), "invalid YAML: nested too deep"))
        document.data = None
    except _TooLarge:
        message = f"document too large: more than {MAX_NODES} values once aliases are expanded"
        document.errors.append(SourceError(file, Position(1, 1), message))
        document.data = None
    return document
