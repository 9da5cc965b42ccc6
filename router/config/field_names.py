"""Call fields in rules.yaml's templates (DESIGN.md section 13): at every load, a warning
for each call field a template reads that RevRing's post-call schema does not have, with
"did you mean", located at the template's setting. Read off the templates' syntax trees
(`Template.reads`), so no branch a sample call would skip goes unread.
"""

from __future__ import annotations

from collections.abc import Mapping

from router.config.yaml_source import Position, SourceError
from router.core.call_fields import unknown_field
from router.core.template_fields import FieldRead
from router.core.templates import GLOBAL_NAMES
from sinks.base import DELIVERY_NAMES, RendersText, SinkConfig

# Names Jinja gives a template inside a loop, a macro or a call block.
_JINJA_NAMES = frozenset({"loop", "self", "caller", "varargs", "kwargs", "super"})
_NOT_CALL_FIELDS = DELIVERY_NAMES | GLOBAL_NAMES | _JINJA_NAMES


def call_path(read: FieldRead) -> tuple[str, ...] | None:
    """The call field path a lookup reads (`event.status` reads `status`), None when it
    reads something else (the rule's name, a digest's calls, Jinja's globals)."""
    path = read.value_path
    if path[0] == "event":
        return path[1:] or None
    return None if path[0] in _NOT_CALL_FIELDS else path


def field_warnings(
    file: str, sinks: Mapping[str, SinkConfig], positions: Mapping[tuple[str, str], Position]
) -> list[SourceError]:
    """A warning for each call field a template reads that the schema does not have."""
    warnings = []
    for name, sink in sinks.items():
        for setting, template in sink.templates().items():
            seen: set[str] = set()
            for read in template.reads:
                path = call_path(read)
                problem = None if path is None else unknown_field(path)
                if path is None or problem is None or path[0] in seen:
                    continue
                seen.add(path[0])
                at = positions.get((name, setting), Position(1, 1))
                line = f" (template line {read.line})" if "\n" in _source(template) else ""
                warnings.append(SourceError(file, at, f"sink {name!r}: {setting}: {problem}{line}"))
    return warnings


def _source(template: RendersText) -> str:
    return str(getattr(template, "source", ""))  # a secret header's stays hidden: one line
