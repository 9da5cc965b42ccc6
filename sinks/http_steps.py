"""The `steps` of an `http` sink (DESIGN.md section 17): named requests sent in order, each
seeing what the ones before it captured (`steps.<name>.<capture>`). Pure: the settings of
a step (`HttpStep`), what a step captures from its answer (`capture`, JMESPath), which
steps an attempt still has to run (`pending_steps`), what its templates may refer to
(`reference_problems`), and the `steps` a preview shows (`unknown_steps`).

A step's templates are compiled once, with the sink's settings; they are rendered when
the step is sent (`sinks.http.HttpSink.transmit`), since a later step reads the answers
of the earlier ones, within the template bounds every template has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jmespath
import jmespath.exceptions
from jmespath.parser import ParsedResult
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from router.core.phones import mask_phone_numbers
from router.core.templates import (
    JsonTemplate,
    Template,
    TemplateKind,
    TemplateRenderError,
    compile_template,
)
from router.core.units import Duration
from router.store import StepOutcomeKind
from sinks.base import RendersText

STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_STEPS = 20
MAX_CAPTURES = 20
# What a preview shows for a value only an earlier step's answer will tell.
UNKNOWN = "⟨{path}: known once sent⟩"
_JINJA_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


class Capture:
    """A compiled JMESPath expression (its source kept for `repr` and errors)."""

    __slots__ = ("_parsed", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._parsed: ParsedResult = jmespath.compile(source)

    def search(self, document: Any) -> Any:
        return self._parsed.search(document)

    def __repr__(self) -> str:
        return f"Capture({self.source!r})"


def _compile_capture(value: Any) -> Capture:
    if isinstance(value, Capture):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a capture is a JMESPath expression (a non-empty string)")
    try:
        return Capture(value)
    except jmespath.exceptions.JMESPathError as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(
            f"capture {value!r} is not a valid JMESPath expression: {detail}"
        ) from None


CaptureExpression = Annotated[Capture, BeforeValidator(_compile_capture)]


class StepTest:
    """An `if:` test: a Jinja expression, true or false for the call and earlier steps."""

    __slots__ = ("source", "template")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self.template = Template("{% if " + source + " %}1{% endif %}", TemplateKind.TEXT)
        except ValueError as exc:
            raise ValueError(f"if: {exc}") from None

    @property
    def reads(self) -> Any:
        return self.template.reads

    def render(self, context: Mapping[str, Any]) -> str:
        return self.template.render(context)

    def holds(self, context: Mapping[str, Any]) -> bool:
        """Whether the test is true; raises `TemplateRenderError`."""
        return self.template.render(context) == "1"

    def __repr__(self) -> str:
        return f"StepTest({self.source!r})"


def _compile_test(value: Any) -> StepTest:
    if isinstance(value, StepTest):
        return value
    if isinstance(value, bool):
        value = "true" if value else "false"
    if not isinstance(value, str) or not value.strip():
        raise ValueError("if is a template test (a non-empty expression)")
    if "{{" in value or "{%" in value:
        raise ValueError("if is an expression, written without {{ }}: `not steps.find.contact`")
    return StepTest(value)


def _compile_url(value: Any) -> Template:
    if isinstance(value, Template):
        return value
    if not isinstance(value, str):
        raise ValueError("a step's url is an http:// or https:// URL (a template)")
    if not value.strip():  # `${CRM_URL:-}` unset: the sink is unconfigured, and waits
        return compile_template("", TemplateKind.HEADER)
    literal = _JINJA_BLOCK.sub("x", value)
    if not value.startswith(("{{", "{%")) and not re.match(r"^https?://[^/\s?#]+", literal):
        raise ValueError("a step's url must be an http:// or https:// URL with a host")
    return compile_template(value, TemplateKind.HEADER)


class HttpStep(BaseModel):
    """One step's settings: an `http` sink's request options plus `capture` and `if`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True
    )

    name: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: Annotated[Template, BeforeValidator(_compile_url)]
    # Header values (templates; secrets masked like the sink's own): `sinks.http.HeaderValue`,
    # checked by the sink, which knows the reserved names.
    headers: dict[str, Any] = Field(default_factory=dict)
    body: JsonTemplate | None = None
    timeout: Duration | None = None
    capture: dict[str, CaptureExpression] = Field(default_factory=dict)
    when: Annotated[StepTest, BeforeValidator(_compile_test)] | None = Field(
        default=None, alias="if"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STEP_NAME.match(value):
            raise ValueError(
                "a step's name is a word of letters, digits and _ (not starting with a digit)"
            )
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("timeout must be longer than 0s")
        return value

    @field_validator("capture")
    @classmethod
    def _capture_names(cls, value: dict[str, Capture]) -> dict[str, Capture]:
        if len(value) > MAX_CAPTURES:
            raise ValueError(f"a step captures at most {MAX_CAPTURES} values")
        for name in value:
            if not STEP_NAME.match(name):
                raise ValueError(f"capture name {name!r} must be a word of letters, digits and _")
        return value

    def templates(self) -> dict[str, RendersText]:
        """The step's templates by their setting under the step (`url`, `headers.X`, ...)."""
        named: dict[str, RendersText] = {"url": self.url}
        named.update({f"headers.{name}": value for name, value in self.headers.items()})
        if self.body is not None:
            named["body"] = self.body
        if self.when is not None:
            named["if"] = self.when
        return named


def step_name_problems(steps: Sequence[HttpStep]) -> list[str]:
    """What is wrong with the steps as a list: none, too many, a name twice."""
    if not steps:
        return ["steps must list at least one step"]
    if len(steps) > MAX_STEPS:
        return [f"at most {MAX_STEPS} steps"]
    seen: set[str] = set()
    problems = []
    for step in steps:
        if step.name in seen:
            problems.append(f"step name {step.name!r} is used twice; names must be unique")
        seen.add(step.name)
    return problems


def reference_problems(steps: Sequence[HttpStep]) -> list[tuple[tuple[str | int, ...], str]]:
    """Each `steps.X.Y` a step's template reads where X is no earlier step or Y none of its
    captures, as (the setting's path under the sink, the problem)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    earlier: dict[str, frozenset[str]] = {}
    for index, step in enumerate(steps):
        for setting, template in step.templates().items():
            for read in template.reads:
                path = read.value_path
                if path[0] != "steps":
                    continue
                where: tuple[str | int, ...] = ("steps", index, *setting.split(".", 1))
                if len(path) < 3:
                    problems.append(
                        (where, f"{'.'.join(path)}: name a step and a capture: steps.<step>.<name>")
                    )
                elif path[1] not in earlier:
                    known = ", ".join(earlier) or "none"
                    problems.append(
                        (
                            where,
                            f"{'.'.join(path[:3])}: step {path[1]!r} is not an earlier step"
                            f" of {step.name!r} (earlier steps: {known})",
                        )
                    )
                elif path[2] not in earlier[path[1]]:
                    known = ", ".join(sorted(earlier[path[1]])) or "none"
                    problems.append(
                        (
                            where,
                            f"{'.'.join(path[:3])}: step {path[1]!r} captures no {path[2]!r}"
                            f" (its captures: {known})",
                        )
                    )
        earlier[step.name] = frozenset(step.capture)
    return problems


class AnswerNotJson(Exception):
    """A step's answer is not JSON, and the step captures from it."""


def capture(step: HttpStep, body: bytes, *, complete: bool = True) -> dict[str, Any]:
    """What `step` captures from its answer's body: each expression's value, None when it
    finds nothing. Raises `AnswerNotJson` when there is something to capture and the
    body is not (whole) JSON."""
    if not step.capture:
        return {}
    if not complete:
        raise AnswerNotJson("its answer is too long to read whole")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise AnswerNotJson("its answer is not JSON") from None
    found = {}
    for name, expression in step.capture.items():
        try:
            found[name] = expression.search(document)
        except (jmespath.exceptions.JMESPathError, RecursionError, TypeError, ValueError):
            found[name] = None  # a function given the wrong type for this answer
    return found


def shown_captures(captures: Mapping[str, Any]) -> dict[str, Any]:
    """Captures as people may see them (stored with the attempt): phone numbers masked."""
    shown: dict[str, Any] = {}
    for name, value in captures.items():
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
            shown[name] = json.loads(mask_phone_numbers(text))
        except (ValueError, RecursionError):  # a bare number masked is no JSON any more
            shown[name] = mask_phone_numbers(str(value))
    return shown


@dataclass(frozen=True)
class StepsMessage:
    """What `HttpSink.build` returns for a sink with steps (picklable): the templates'
    context for the call, the delivery's id, and the steps earlier attempts finished."""

    delivery_id: str
    context: dict[str, Any]
    done: Mapping[str, tuple[StepOutcomeKind, Mapping[str, Any]]] = field(default_factory=dict)


def pending_steps(steps: Sequence[HttpStep], done: Mapping[str, Any]) -> int:
    """The index of the first step an attempt has to run (`len(steps)`: none left). Steps
    are done in order, so a retry resumes at the first one not done."""
    for index, step in enumerate(steps):
        if step.name not in done:
            return index
    return len(steps)


def steps_view(
    steps: Sequence[HttpStep], done: Mapping[str, tuple[StepOutcomeKind, Mapping[str, Any]]]
) -> dict[str, Any]:
    """`steps` as templates see it: each finished step's captures by name, null for what
    it found nothing for (and for every capture of a skipped step)."""
    view: dict[str, Any] = {}
    for step in steps:
        if step.name in done:
            captures = done[step.name][1]
            view[step.name] = {name: captures.get(name) for name in step.capture}
    return view


def unknown_steps(steps: Sequence[HttpStep]) -> dict[str, dict[str, str]]:
    """`steps` for a preview: each capture a visible placeholder (nothing is sent)."""
    return {
        step.name: {name: UNKNOWN.format(path=f"steps.{step.name}.{name}") for name in step.capture}
        for step in steps
    }


def render_error(step: HttpStep, setting: str, exc: TemplateRenderError) -> str:
    return f"step {step.name!r}: {setting}: {exc}"
