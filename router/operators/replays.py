"""A bulk replay as requested (`POST /admin/deliveries/replay`): which deliveries go back
in the queue, every problem of the request named. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from router.operators.silences import RequestInvalid
from router.rules.matching import kind_of

REPLAYABLE = ("dead", "muted")
REPLAY_FIELDS = ("status", "sink", "rule")
MAX_NAME = 200


@dataclass(frozen=True)
class BulkReplay:
    """Every delivery in `status`, of `sink` and of `rule` when given."""

    status: Literal["dead", "muted"]
    sink: str | None = None
    rule: str | None = None


def parse_bulk_replay(body: Any) -> BulkReplay:
    """The replay a request body asks for, or `RequestInvalid` listing every problem."""
    if not isinstance(body, dict):
        raise RequestInvalid([f"the body must be a JSON object, not {kind_of(body)}"])
    errors = [
        f"{name}: unknown field (expected {', '.join(REPLAY_FIELDS)})"
        for name in body
        if name not in REPLAY_FIELDS
    ]
    status = body.get("status")
    if status not in REPLAYABLE:
        given = "missing" if status is None else f"got {status!r}"
        errors.append(f"status: required, one of {' or '.join(REPLAYABLE)} ({given})")
    names = {name: _name(body, name, errors) for name in ("sink", "rule")}
    if errors:
        raise RequestInvalid(errors)
    return BulkReplay("dead" if status == "dead" else "muted", names["sink"], names["rule"])


def _name(body: dict[str, Any], field: str, errors: list[str]) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        errors.append(f"{field}: expected a {field} name (1 to {MAX_NAME} characters)")
        return None
    return value
