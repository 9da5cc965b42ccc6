"""The RevRing post-call event (`PostCallEvent`) and how a request body becomes one.

RevRing's schema keeps growing, so the model is tolerant where tolerance loses
nothing: unknown fields are kept, an unknown `status` or `direction` is accepted
(and reported by `unknown_values`), `hangupCause` is free text, every optional
field may be null, and timestamps may be ISO 8601 strings or unix seconds.
A required string may be empty (an anonymous caller's `fromNumber`, a `status`
RevRing has not filled in): the call is kept and routed. Only `id` must be non-empty,
since it is the call's identity. Everything else is enforced: a missing required
field or a wrong type is an error that names the field.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from router.core.nesting import MAX_DEPTH, clipped, shape, too_deep_fields

_LONG_DIGIT_RUN = re.compile(rb"[0-9]{19,}")


class TooDeep(ValueError):
    """JSON nested deeper than allowed; `problems` names the fields that are."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def decode_json(body: bytes, *, refuse_deep: bool = False) -> Any:
    """A stored or posted body as JSON data, the same way everywhere (ingest, delivery,
    backfill, the console): orjson for speed and strictness; the stdlib parser again, for
    exact values, when the body may hold an integer beyond 64 bits (orjson turns those
    into lossy floats), so rules and templates see the same numbers.

    JSON nested deeper than `MAX_DEPTH` levels (DESIGN.md section 5): with `refuse_deep`
    (a body coming in) it raises `TooDeep`, naming the top-level fields that are; else (a
    body stored before the limit) it comes cut at the limit (`router.core.nesting.clipped`),
    so nothing that prints or compares it recurses past it. The walk that measures the
    depth also finds the floats that may stand for big integers: the slower check for
    those runs only when there is one."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if refuse_deep and str(exc).startswith("depth limit exceeded"):
            raise _too_deep(["body"]) from None
        raise
    found = shape(value, MAX_DEPTH)
    if found.depth > MAX_DEPTH and refuse_deep:
        raise _too_deep(too_deep_fields(value, MAX_DEPTH))
    if found.big_float and _LONG_DIGIT_RUN.search(body):
        with contextlib.suppress(RecursionError):  # stored before the limit: orjson's
            value = json.loads(body)
    return clipped(value, MAX_DEPTH) if found.depth > MAX_DEPTH else value


def _too_deep(fields: list[str]) -> TooDeep:
    return TooDeep([f"{name}: nested deeper than {MAX_DEPTH} levels" for name in fields])


KNOWN_STATUSES = frozenset({"COMPLETED", "TRANSFERRED", "FAILED", "CANCELED"})
KNOWN_DIRECTIONS = frozenset({"INBOUND", "OUTBOUND"})


def _no_nul(value: str) -> str:
    # Stored as text by the stores; PostgreSQL text cannot hold NUL.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


CallId = Annotated[str, StringConstraints(min_length=1, max_length=512), AfterValidator(_no_nul)]
Text = Annotated[str, StringConstraints(max_length=512), AfterValidator(_no_nul)]
ShortText = Annotated[str, StringConstraints(max_length=64), AfterValidator(_no_nul)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_SECOND = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()
_YEAR_10000 = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH).total_seconds() + 86400


def unix_time(seconds: float) -> datetime | None:
    """Unix seconds as a moment; None outside the years 1 to 9999 (or not finite): such
    a timestamp is kept as sent in the body and reads as null (DESIGN.md section 5)."""
    if not _FIRST_SECOND <= seconds < _YEAR_10000:  # NaN compares false too
        return None
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:  # rounding at the very edge of the range
        return None


def _unix_seconds(value: Any) -> Any:
    """A number is unix seconds (`unix_time`); text goes on to pydantic's ISO 8601."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return unix_time(value)
    return value


# ISO 8601 text or unix seconds as a number (DESIGN.md section 5), or null.
Timestamp = Annotated[
    datetime | None,
    BeforeValidator(_unix_seconds),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}, {"type": "null"}]}
    ),
]
# What the router never routes on by shape is kept as sent, whatever its shape: any JSON.
AnyJson = Annotated[Any, WithJsonSchema({})]
# A list (or null); its entries are kept as sent, whatever their shape.
Transcript = list[Any] | None


class PostCallEvent(BaseModel):
    """One call as RevRing reports it after it ended."""

    model_config = ConfigDict(extra="allow", strict=False)

    id: CallId
    direction: ShortText
    status: ShortText
    fromNumber: Text
    toNumber: Text
    organizationId: Text
    agentId: Text

    recordingUrl: str | None = None
    hangupCause: str | None = None
    errorMessage: str | None = None
    transcript: Transcript = None
    summary: str | None = None
    metrics: AnyJson = None
    initiatedAt: Timestamp = None
    startedAt: Timestamp = None
    endedAt: Timestamp = None
    durationSeconds: Annotated[int, Field(strict=True, ge=0)] | None = None
    agentName: str | None = None
    sipTrunkId: str | None = None
    agentCallerIdName: str | None = None
    variables: AnyJson = None
    createdAt: Timestamp = None
    updatedAt: Timestamp = None

    def unknown_values(self) -> dict[str, str]:
        """Fields whose value is outside the documented set, e.g. {"status": "NO_ANSWER"}."""
        unknown = {}
        if self.status not in KNOWN_STATUSES:
            unknown["status"] = self.status
        if self.direction not in KNOWN_DIRECTIONS:
            unknown["direction"] = self.direction
        return unknown


OPTIONAL_FIELDS: tuple[str, ...] = tuple(
    name for name, info in PostCallEvent.model_fields.items() if not info.is_required()
)


class EventRejected(Exception):
    """A body that is not a valid post-call event; `problems` names every bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per bad field: `status: field required`, `durationSeconds: ...`."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in item["loc"]) or "body"
        problems.append(f"{path}: {item['msg']}")
    return problems


def parse_event(payload: Any) -> PostCallEvent:
    """Validate a decoded JSON body; raise `EventRejected` naming every problem."""
    if not isinstance(payload, dict):
        raise EventRejected([f"body: expected a JSON object, got {type(payload).__name__}"])
    try:
        return PostCallEvent.model_validate(payload)
    except ValidationError as exc:
        raise EventRejected(describe_validation_error(exc)) from None
