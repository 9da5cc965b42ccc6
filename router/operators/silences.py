"""Operators' requests for silences and sink pauses, checked once for the admin API and
the CLI alike (DESIGN.md sections 3, 4 and 9), and their JSON shape. Pure: no I/O.

A silence request is a mapping: `when` (the rules' condition syntax, naming values: see
`value_problem`), `for` (a duration) or `ends_at` (ISO 8601 with a zone), `starts_at`
(optional, default now), `sinks` (optional list of configured sink names, default all)
and `comment`. A pause request: `for` and `comment`. Every problem is reported, each
naming its field; nothing is half accepted.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from router.core.units import format_duration, parse_duration
from router.rules import ConditionErrors, Silence, compile_when
from router.rules.matching import kind_of
from router.rules.regex import compile_search
from router.store import SilenceRecord, SinkPause

LONGEST_SILENCE = 366 * 86400.0  # a year: anything longer is a typo or belongs in rules.yaml
LONGEST_PAUSE = 366 * 86400.0
EXPIRED_SILENCES_KEPT = 30 * 86400.0  # expired silences stay listed this long
MAX_COMMENT = 1000
MAX_SINKS = 100
SILENCE_FIELDS = ("when", "for", "starts_at", "ends_at", "sinks", "comment")
PAUSE_FIELDS = ("for", "comment")


class RequestInvalid(Exception):
    """Every problem of one request, each a sentence naming its field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def new_silence_id() -> str:
    return secrets.token_hex(8)


def parse_instant(value: Any, field: str, errors: list[str]) -> float | None:
    """Unix seconds from an ISO 8601 time with a zone, or None after noting the problem."""
    if not isinstance(value, str):
        errors.append(f"{field}: expected an ISO 8601 time such as 2026-12-24T10:00:00Z")
        return None
    try:
        instant = datetime.fromisoformat(value)
        timestamp = instant.timestamp()
    except (ValueError, OverflowError):
        errors.append(f"{field}: not an ISO 8601 time: {value!r}")
        return None
    if instant.tzinfo is None:
        errors.append(f"{field}: needs a time zone (Z or an offset such as +01:00)")
        return None
    return timestamp


def _duration(value: Any, field: str, longest: float, errors: list[str]) -> float | None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        errors.append(f"{field}: {exc}")
        return None
    if seconds <= 0:
        errors.append(f"{field}: must be longer than 0s")
        return None
    if seconds > longest:
        errors.append(f"{field}: must be at most {format_duration(longest)}, got {value!r}")
        return None
    return seconds


# The operators that name values (DESIGN.md section 9); `exists`, `ne`, `not_in` and `not`
# say only what a call is not, so alone they match nearly every call.
VALUE_OPERATORS = frozenset({"eq", "in", "lt", "le", "gt", "ge", "regex", "contains", "startswith"})
# A regex that finds a match in each of these texts finds one in (nearly) any: `.*`, `.`,
# `^`, `(x)?` name nothing.
_PROBE_TEXTS = ("a", "Z9", " ", "-", "\u00e9", "FAILED", "+14155550123")
_NAMES_NO_VALUES = (
    "names no values, so it would silence every call: give at least one condition on a"
    " value (equality, one of, regex, startswith, contains or a bound such as lt);"
    " exists, ne, not_in and conditions under not do not count"
)
_BRANCH_NAMES_NO_VALUES = (
    "this branch of any names no values, so every call it matches would be silenced: give"
    " each branch a condition on a value (equality, one of, regex, startswith, contains"
    " or a bound such as lt)"
)


def _operator_names_values(op: Any, operand: Any) -> bool:
    if op not in VALUE_OPERATORS:
        return False
    if isinstance(operand, list):  # in: one of these
        return bool(operand)
    if operand == "" and op != "eq":  # a prefix, substring, pattern or bound any text passes
        return False
    if op == "regex" and isinstance(operand, str):
        occurs_in = compile_search(operand)
        return not all(occurs_in(text) for text in _PROBE_TEXTS)
    return True


def names_values(when: Any) -> bool:
    """Whether a valid `when` can hold only on calls with certain values: one of its entries
    (they must all hold) is an equality, a non-empty one of, or an operator naming a value;
    an `all` with such a member; an `any` whose members all are. Nothing under `not` counts.

    So a `when` that names values never matches a call that lacks every field."""
    if not isinstance(when, dict):
        return False
    for key, condition in when.items():
        if key == "not":
            continue
        if key in ("all", "any"):
            items = condition if isinstance(condition, list) else []
            member_names = [names_values(item) for item in items]
            if member_names and (any if key == "all" else all)(member_names):
                return True
            continue
        if isinstance(condition, dict):
            if any(_operator_names_values(op, operand) for op, operand in condition.items()):
                return True
        elif isinstance(condition, list):
            if condition:
                return True
        else:
            return True  # equality with a scalar
    return False


def value_problem(when: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Why a valid `when` may not make a silence, with the path (relative to `when`) to point
    at; None when it names values. A branch of `any` that names none while another does is
    pointed at: every call it matches would be silenced, whatever the other branches say."""
    if names_values(when):
        return None
    return _valueless_branch(when, ()) or ((), _NAMES_NO_VALUES)


def _valueless_branch(
    when: Any, path: tuple[str | int, ...]
) -> tuple[tuple[str | int, ...], str] | None:
    """The deepest branch of an `any` that names no values while a sibling does, searched
    through the members of `all` and `any` that name none (not under `not`)."""
    if not isinstance(when, dict):
        return None
    for key, items in when.items():
        if key not in ("all", "any") or not isinstance(items, list):
            continue
        named = [names_values(item) for item in items]
        for index, item in enumerate(items):
            if named[index]:
                continue
            where = (*path, key, index)
            deeper = _valueless_branch(item, where)
            if deeper is not None:
                return deeper
            if key == "any" and any(named):
                return where, _BRANCH_NAMES_NO_VALUES
    return None


def _condition_errors(when: Any, errors: list[str]) -> None:
    if not isinstance(when, dict) or not when:
        given = "an empty mapping" if when == {} else kind_of(when)
        errors.append(
            f"when: must be a mapping with at least one condition (the rules' syntax), not {given}"
        )
        return
    try:
        compile_when(when)
    except ConditionErrors as exc:
        for problem in exc.errors:
            where = ".".join(str(part) for part in ("when", *problem.path))
            errors.append(f"{where}: {problem.message}")
        return
    unnamed = value_problem(when)
    if unnamed is not None:
        path, message = unnamed
        errors.append(f"{'.'.join(str(part) for part in ('when', *path))}: {message}")


def _comment(body: Mapping[str, Any], errors: list[str]) -> str:
    comment = body.get("comment", "")
    if comment is None:
        return ""
    if not isinstance(comment, str):
        errors.append(f"comment: expected text, not {kind_of(comment)}")
        return ""
    if len(comment) > MAX_COMMENT:
        errors.append(f"comment: at most {MAX_COMMENT} characters")
    return comment


def _unknown_fields(body: Mapping[str, Any], known: tuple[str, ...], errors: list[str]) -> None:
    for name in body:
        if name not in known:
            errors.append(f"{name}: unknown field (expected {', '.join(known)})")


def parse_silence_request(body: Any, *, now: float, known_sinks: Collection[str]) -> SilenceRecord:
    """A new silence from a request, or `RequestInvalid` listing every problem."""
    if not isinstance(body, dict):
        raise RequestInvalid([f"the body must be a JSON object, not {kind_of(body)}"])
    errors: list[str] = []
    _unknown_fields(body, SILENCE_FIELDS, errors)
    if "when" not in body:
        errors.append("when: required (the condition calls must match to be silenced)")
    else:
        _condition_errors(body["when"], errors)
    starts_at: float | None = now
    if body.get("starts_at") is not None:
        starts_at = parse_instant(body["starts_at"], "starts_at", errors)
        if starts_at is not None and starts_at > now + LONGEST_SILENCE:
            errors.append(f"starts_at: at most {format_duration(LONGEST_SILENCE)} from now")
            starts_at = None
    ends_at: float | None = None
    has_for, has_end = body.get("for") is not None, body.get("ends_at") is not None
    if has_for == has_end:
        errors.append("for / ends_at: give exactly one (a duration such as 2h, or an end time)")
    elif has_for:
        seconds = _duration(body["for"], "for", LONGEST_SILENCE, errors)
        if seconds is not None and starts_at is not None:
            ends_at = starts_at + seconds
    else:
        ends_at = parse_instant(body["ends_at"], "ends_at", errors)
        if ends_at is not None and starts_at is not None:
            if ends_at <= starts_at:
                errors.append("ends_at: must be after starts_at")
            elif ends_at - starts_at > LONGEST_SILENCE:
                longest = format_duration(LONGEST_SILENCE)
                errors.append(f"ends_at: a silence lasts at most {longest}")
    if ends_at is not None and ends_at <= now and not errors:
        errors.append("ends_at: is in the past; the silence would never apply")
    sinks = _sinks(body.get("sinks"), known_sinks, errors)
    comment = _comment(body, errors)
    if errors:
        raise RequestInvalid(errors)
    assert starts_at is not None and ends_at is not None
    when_text = json.dumps(body["when"], separators=(",", ":"), sort_keys=True)
    return SilenceRecord(new_silence_id(), when_text, sinks, starts_at, ends_at, comment, now)


def _sinks(value: Any, known_sinks: Collection[str], errors: list[str]) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list) and len(value) > MAX_SINKS:
        errors.append(f"sinks: at most {MAX_SINKS} names")
        return None
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        errors.append("sinks: expected a non-empty list of sink names (leave it out for all)")
        return None
    for name in value:
        if name not in known_sinks:
            errors.append(
                f"sinks: unknown sink {name!r} (configured: {', '.join(sorted(known_sinks))})"
            )
    return tuple(dict.fromkeys(value))


def parse_pause_request(
    sink: str, body: Any, *, now: float, known_sinks: Collection[str]
) -> SinkPause:
    """A new sink pause from a request, or `RequestInvalid` listing every problem."""
    if not isinstance(body, dict):
        raise RequestInvalid([f"the body must be a JSON object, not {kind_of(body)}"])
    errors: list[str] = []
    if sink not in known_sinks:
        errors.append(f"sink: unknown sink {sink!r} (configured: {', '.join(sorted(known_sinks))})")
    _unknown_fields(body, PAUSE_FIELDS, errors)
    seconds = None
    if body.get("for") is None:
        errors.append("for: required (how long to hold the sink, such as 1h)")
    else:
        seconds = _duration(body["for"], "for", LONGEST_PAUSE, errors)
    comment = _comment(body, errors)
    if errors:
        raise RequestInvalid(errors)
    assert seconds is not None
    return SinkPause(sink, now + seconds, comment, now)


def to_silence(record: SilenceRecord) -> Silence:
    """The stored silence as the muting decision takes it (its `when` compiled)."""
    return Silence(
        record.id,
        compile_when(json.loads(record.when)),
        None if record.sinks is None else frozenset(record.sinks),
        _utc(record.starts_at),
        _utc(record.effective_end),
    )


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else _utc(timestamp).isoformat().replace("+00:00", "Z")


def silence_json(record: SilenceRecord, now: float) -> dict[str, Any]:
    """A silence as the admin API and `silence list --json` show it."""
    return {
        "id": record.id,
        "when": json.loads(record.when),
        "sinks": None if record.sinks is None else list(record.sinks),
        "starts_at": iso(record.starts_at),
        "ends_at": iso(record.effective_end),
        "comment": record.comment,
        "state": record.state(now),
        "created_at": iso(record.created_at),
        "expired_at": iso(record.expired_at),
    }


def pause_json(pause: SinkPause) -> dict[str, Any]:
    """A sink pause as the admin API shows it."""
    return {
        "sink": pause.sink,
        "paused": True,
        "until": iso(pause.until),
        "comment": pause.comment,
        "paused_at": iso(pause.created_at),
    }
