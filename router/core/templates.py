"""Jinja2 templates of rules.yaml: sandboxed, compiled once, with call-domain filters.

A value the call lacks renders empty, never fails (`router.core.missing_values`); each
template knows the paths it reads (`router.core.template_fields`), for `check`.

Each template has a *kind* that decides how the values it prints are treated:

- `text`: printed as they are (email bodies, log lines).
- `slack`: every printed value is escaped for Slack mrkdwn (`&`, `<`, `>`), so event
  data cannot ping `<!channel>` or smuggle a link; the template's own literal text
  is left alone, so an admin can still write `<!here>` on purpose.
- `header`: line breaks are removed from the output, so a header cannot be split.
- `json`: the output must parse as JSON (an HTTP body). Every printed value fills one
  JSON token: inside quotes it is escaped for a JSON string, outside it is a whole JSON
  value, and `tojson` output goes in as a whole value (see `router.core.json_printing`).
- `slack_json`: a `json` template for Slack blocks: values are also escaped for mrkdwn.
- `teams_json`: a `json` template for a Teams Adaptive Card: text values (and the string
  leaves of a printed list or mapping) are also escaped for the card's Markdown subset.
- `html`: every printed value is HTML-escaped (autoescape), unless marked `| safe`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import partial
from typing import Annotated, Any

import jinja2
from pydantic import BeforeValidator

from router.core.events import OPTIONAL_FIELDS
from router.core.json_printing import (
    MARKER_CHARACTERS,
    JsonValue,
    mark_value,
    place_values,
    to_json_value,
)
from router.core.missing_values import MissingValue, json_default
from router.core.phones import mask_phone
from router.core.template_fields import FieldRead, field_reads
from router.core.template_limits import (
    BoundedSandbox,
    RenderLimitExceeded,
    check_output,
    end_render,
    start_render,
)


class TemplateKind(StrEnum):
    TEXT = "text"
    SLACK = "slack"
    HEADER = "header"
    JSON = "json"
    SLACK_JSON = "slack_json"
    TEAMS_JSON = "teams_json"
    HTML = "html"

    @property
    def prints_json(self) -> bool:
        return self in (TemplateKind.JSON, TemplateKind.SLACK_JSON, TemplateKind.TEAMS_JSON)


class TemplateRenderError(Exception):
    """A template that compiled but failed on one event (a bad filter input, a bound)."""


_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# Every boundary str.splitlines() knows; the email package folds headers with it.
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+")


def slack_escape(value: Any) -> str:
    """Escape text for Slack mrkdwn: `&`, `<` and `>` become entities."""
    return str(value).translate(_SLACK_ESCAPES)


# What Adaptive Cards' Markdown subset (bold, italic, links, lists) and Teams' mentions
# (`<at>…</at>`) are made of; a backslash makes each one literal (CommonMark escapes).
_TEAMS_MARKDOWN = re.compile(r"([\\`*_~\[\]<>])")
_TEAMS_LIST_MARKER = re.compile(r"^([ \t]*)([-+]|[0-9]+\.)(?=[ \t]|$)", re.MULTILINE)


def teams_escape(value: Any) -> str:
    """Escape text for a Teams card's Markdown: `*`, `_`, `[`, `<`… and list markers at the
    start of a line are backslash-escaped, so event text cannot format, link or mention."""
    text = _TEAMS_MARKDOWN.sub(r"\\\1", str(value))
    return _TEAMS_LIST_MARKER.sub(
        lambda match: match[1] + match[2][:-1] + "\\" + match[2][-1], text
    )


def teams_escape_leaves(value: Any) -> Any:
    """`value` with every string in it (keys aside) escaped by `teams_escape`."""
    if isinstance(value, str):
        return teams_escape(value)
    if isinstance(value, Mapping):
        return {key: teams_escape_leaves(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [teams_escape_leaves(item) for item in value]
    return value


def strip_line_breaks(value: Any) -> str:
    """One line: every line break (CR, LF and Unicode separators) becomes a space."""
    return _LINE_BREAKS.sub(" ", str(value)).strip()


def human_duration(seconds: Any) -> str:
    """108 -> `1m 48s`; 3725 -> `1h 2m 5s`; None -> `-`."""
    if seconds is None or isinstance(seconds, bool):
        return "-"
    try:
        total = round(float(seconds))
    except (TypeError, ValueError, OverflowError):
        return str(seconds)
    if total < 0:
        return str(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes or hours:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def _entry_speaker_and_text(entry: Any) -> tuple[str, str]:
    if isinstance(entry, Mapping):
        speaker = entry.get("role") or entry.get("speaker") or entry.get("name") or "?"
        text = entry.get("content")
        if text is None:
            text = entry.get("text", entry.get("message", ""))
        return str(speaker), "" if text is None else str(text)
    return "?", str(entry)


def transcript_excerpt(transcript: Any, max_lines: int = 6, max_chars: int = 600) -> str:
    """The first lines of a transcript as `role: text`, bounded in lines and characters.

    Tolerates role/content and speaker/text entries, plain strings, and None.
    """
    if not transcript:
        return ""
    if isinstance(transcript, str):
        lines = [transcript]
    elif isinstance(transcript, list):
        lines = [f"{speaker}: {text}" for speaker, text in map(_entry_speaker_and_text, transcript)]
    else:
        return ""
    shown = lines[:max_lines]
    excerpt = "\n".join(shown)
    truncated = len(lines) > max_lines
    if len(excerpt) > max_chars or (truncated and len(excerpt) >= max_chars):
        excerpt = excerpt[: max(max_chars - 1, 0)].rstrip()
        truncated = True
    return excerpt + ("…" if truncated else "")


def truncate_text(text: str, limit: int) -> str:
    """At most `limit` characters, ending in `…` when something was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


FILTERS: dict[str, Callable[..., Any]] = {
    "mask_phone": mask_phone,
    "human_duration": human_duration,
    "duration": human_duration,
    "transcript_excerpt": transcript_excerpt,
    "slack_escape": slack_escape,
    "one_line": strip_line_breaks,
}


def _finalizer(kind: TemplateKind) -> Callable[[Any], Any]:
    if kind is TemplateKind.JSON:
        return partial(mark_value, escape=str)
    if kind is TemplateKind.SLACK_JSON:
        return partial(mark_value, escape=slack_escape)
    if kind is TemplateKind.TEAMS_JSON:
        return _mark_teams_value
    if kind is TemplateKind.SLACK:
        return lambda value: "" if value is None else slack_escape(value)
    if kind is TemplateKind.HEADER:
        return lambda value: "" if value is None else strip_line_breaks(value)
    return lambda value: "" if value is None else value


def _mark_teams_value(value: Any) -> str:
    """The finalizer of a Teams card template: text escaped for Markdown, a list or mapping
    printed whole with its strings escaped, `tojson` output (escaped already) as it is."""
    if isinstance(value, str) and not isinstance(value, JsonValue):
        return mark_value(value, escape=teams_escape)
    if isinstance(value, list | tuple | Mapping):
        value = to_json_value(teams_escape_leaves(value))
    return mark_value(value, escape=str)


def _teams_tojson(value: Any, indent: int | None = None) -> JsonValue:
    return to_json_value(teams_escape_leaves(value), indent=indent)


def _plain_tojson(value: Any) -> str:
    """JSON without Jinja's `\\u003c` escapes, so the slack finalizer still escapes `<`."""
    return json.dumps(value, ensure_ascii=False, default=json_default)


def _make_environment(kind: TemplateKind) -> jinja2.Environment:
    env = BoundedSandbox(
        output_factor=4 if kind.prints_json else 1,
        undefined=MissingValue,
        autoescape=kind is TemplateKind.HTML,
        finalize=_finalizer(kind),
        keep_trailing_newline=False,
    )
    env.filters.update(FILTERS)
    if kind is TemplateKind.SLACK:
        # Jinja's tojson writes `<` as `\u003c`, which JSON decoding turns back into a raw
        # `<` after escaping ran: a `<!channel>` in a transcript would reach Slack live.
        env.filters["tojson"] = _plain_tojson
    if kind.prints_json:
        env.filters["tojson"] = to_json_value
    if kind is TemplateKind.TEAMS_JSON:
        env.filters["tojson"] = _teams_tojson
    env.policies["json.dumps_kwargs"] = {
        "sort_keys": False,
        "ensure_ascii": False,
        "default": json_default,
    }
    env.guard_filters()
    return env


_ENVIRONMENTS = {kind: _make_environment(kind) for kind in TemplateKind}
GLOBAL_NAMES = frozenset(_ENVIRONMENTS[TemplateKind.TEXT].globals)


class Template:
    """A compiled template; `render` is safe to call on any event. `reads`: the paths of
    the values it reads (`router.core.template_fields`)."""

    def __init__(self, source: str, kind: TemplateKind = TemplateKind.TEXT) -> None:
        self.source = source
        self.kind = kind
        if kind.prints_json and any(marker in source for marker in MARKER_CHARACTERS):
            raise ValueError("template contains a reserved character (U+E000 to U+E002)")
        environment = _ENVIRONMENTS[kind]
        try:
            tree = environment.parse(source)
            self.reads: tuple[FieldRead, ...] = field_reads(tree)
            self._compiled = environment.from_string(tree)  # the compiler rewrites the tree
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(
                f"template does not compile: {exc.message} (template line {exc.lineno})"
            ) from None

    def render(self, context: Mapping[str, Any]) -> str:
        """The template's text for `context`; `TemplateRenderError` when it fails, or goes
        past a bound of `router.core.template_limits` (time, output size)."""
        bound = start_render(context)
        try:
            text = self._compiled.render(context)
        except RenderLimitExceeded as exc:
            raise TemplateRenderError(f"template stopped{_where(exc)}: {exc}") from None
        except jinja2.TemplateError as exc:
            raise TemplateRenderError(f"template failed: {exc}") from None
        except Exception as exc:  # a filter's or the sandbox's own error, RecursionError
            raise TemplateRenderError(f"template failed: {type(exc).__name__}: {exc}") from None
        finally:
            end_render(bound)
        if self.kind is TemplateKind.HEADER:
            return strip_line_breaks(text)
        if self.kind.prints_json:
            try:
                text = place_values(text)
                check_output(text)
                json.loads(text)
            except RenderLimitExceeded as exc:
                raise TemplateRenderError(f"template stopped: {exc}") from None
            except ValueError as exc:
                raise TemplateRenderError(f"template did not render valid JSON: {exc}") from None
        return text

    def __repr__(self) -> str:
        return f"Template({self.kind.value}, {self.source[:40]!r})"


def _where(exc: BaseException) -> str:
    """` at template line N`: the last line of the template the traceback passed through
    (Jinja rewrites a template's frames to its own lines)."""
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return "" if line is None else f" at template line {line}"


def compile_template(source: Any, kind: TemplateKind = TemplateKind.TEXT) -> Template:
    if isinstance(source, Template):
        return source
    if not isinstance(source, str):
        raise ValueError(f"expected a template string; got {type(source).__name__}")
    return Template(source, kind)


TextTemplate = Annotated[
    Template, BeforeValidator(partial(compile_template, kind=TemplateKind.TEXT))
]
SlackTemplate = Annotated[
    Template, BeforeValidator(partial(compile_template, kind=TemplateKind.SLACK))
]
HeaderTemplate = Annotated[
    Template, BeforeValidator(partial(compile_template, kind=TemplateKind.HEADER))
]
JsonTemplate = Annotated[
    Template, BeforeValidator(partial(compile_template, kind=TemplateKind.JSON))
]
SlackJsonTemplate = Annotated[
    Template, BeforeValidator(partial(compile_template, kind=TemplateKind.SLACK_JSON))
]
TeamsJsonTemplate = Annotated[
    Template, BeforeValidator(partial(compile_template, kind=TemplateKind.TEAMS_JSON))
]
HtmlTemplate = Annotated[
    Template, BeforeValidator(partial(compile_template, kind=TemplateKind.HTML))
]


def event_context(event: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """What a template sees: the event's fields at top level, the whole event as `event`,
    and the delivery's own values (`rule`, `sink`, `delivery_id`, and for digests
    `calls`, `count`, `group_key`, `window_start`, `window_end`).

    A field named like one of the environment's globals (`range`, `namespace`, `dict`…)
    does not shadow it; the template reaches it as `event.range`."""
    context: dict[str, Any] = dict.fromkeys(OPTIONAL_FIELDS)
    context.update((name, value) for name, value in event.items() if name not in GLOBAL_NAMES)
    context["event"] = event
    context.update(extra)
    return context
