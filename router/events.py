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

import json
import re
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from router.nesting import shape, too_deep_fields

_LONG_DIGIT_RUN = re.compile(rb"[0-9]{19,}")
ORJSON_MAX_DEPTH = 1024  # deeper documents are an error of orjson's own


class TooDeep(ValueError):
    """JSON nested deeper than allowed; `problems` names the fields that are."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _too_deep(fields: list[str], limit: int) -> TooDeep:
    return TooDeep([f"{name}: nested deeper than {limit} levels" for name in fields])


def decode_json(body: bytes, *, max_depth: int | None = None) -> Any:
    """A stored or posted body as JSON data, the same way everywhere (ingest, delivery,
    backfill): orjson for speed and strictness; the stdlib parser again, for exact values,
    when the body may hold an integer beyond 64 bits (orjson turns those into lossy
    floats), so rules and templates see the same numbers.

    With `max_depth`, JSON nested deeper than that many levels raises `TooDeep` naming
    the top-level fields that are (`router.nesting`); JSON deeper than orjson reads
    (1,024 levels) raises it in any case. The walk that measures the depth also finds
    the floats that may stand for big integers, so the slower check for those runs only
    when one is there."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep(["body"], max_depth or ORJSON_MAX_DEPTH) from None
        raise
    found = shape(value, max_depth)
    if max_depth is not None and found.depth > max_depth:
        raise _too_deep(too_deep_fields(value, max_depth), max_depth)
    if found.big_float and _LONG_DIGIT_RUN.search(body):
        try:
            return json.loads(body)
        except RecursionError:  # stored before the depth limit: orjson's reading
            return value
    return value


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
Timestamp = datetime


def _transcript_entries(entries: list[Any] | None) -> list[Any] | None:
    # In Python rather than as `list[dict[str, Any] | str]`: pydantic-core would check (and
    # copy) every entry of a large transcript in one call holding the interpreter lock,
    # stalling the event loop while a worker thread validates; here it can switch.
    if entries is not None:
        for index, entry in enumerate(entries):
            if not isinstance(entry, (dict, str)):
                raise ValueError(
                    f"entry {index} must be an object or a string, got {type(entry).__name__}"
                )
    return entries


Transcript = Annotated[list[Any] | None, AfterValidator(_transcript_entries)]


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
    metrics: dict[str, Any] | None = None
    initiatedAt: Timestamp | None = None
    startedAt: Timestamp | None = None
    endedAt: Timestamp | None = None
    durationSeconds: Annotated[int, Field(strict=True, ge=0)] | None = None
    agentName: str | None = None
    sipTrunkId: str | None = None
    agentCallerIdName: str | None = None
    variables: dict[str, Any] | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None

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
