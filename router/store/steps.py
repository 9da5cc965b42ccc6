"""An `http` sink's steps (`StepOutcome`) as stored, and back.

`attempts.steps` holds an attempt's steps as a JSON array: each step's name, outcome,
captures as shown (masked) and exchange (as `router.store.exchanges` keeps one, in an
object). `deliveries.steps` holds what the next attempt resumes after: an object of
the steps done or skipped so far, by name, each with its outcome and its captures as
captured (`resume_state`); NULL when there are none, or once the delivery is delivered
(a replay then runs every step again).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

from router.store.exchanges import exchange_columns, exchange_of
from router.store.records import StepOutcome, StepOutcomeKind

_OUTCOMES = frozenset({"done", "skipped", "failed"})


def attempt_steps_column(steps: Iterable[StepOutcome]) -> str | None:
    """`attempts.steps` for an attempt's steps (None: the sink has no steps)."""
    shown = [
        {
            "name": step.name,
            "outcome": step.outcome,
            "earlier": step.earlier,
            "captures": dict(step.shown),
            "exchange": None if step.exchange is None else exchange_columns(step.exchange),
        }
        for step in steps
    ]
    return _dumps(shown) if shown else None


def delivery_steps_column(steps: Iterable[StepOutcome], *, delivered: bool) -> str | None:
    """`deliveries.steps` after an attempt: the steps done or skipped, by name."""
    if delivered:
        return None
    state = {
        step.name: {"outcome": step.outcome, "captures": dict(step.captures)}
        for step in steps
        if step.outcome != "failed"
    }
    return _dumps(state) if state else None


def resume_state(text: str | None) -> dict[str, tuple[StepOutcomeKind, dict[str, Any]]]:
    """The steps an earlier attempt did (`deliveries.steps`): name -> (outcome, captures).
    Anything unreadable counts as not done (the step runs again: its `Idempotency-Key`
    lets the destination drop the repeat)."""
    found = _loads(text)
    if not isinstance(found, dict):
        return {}
    state: dict[str, tuple[StepOutcomeKind, dict[str, Any]]] = {}
    for name, entry in found.items():
        if not isinstance(entry, dict) or entry.get("outcome") not in ("done", "skipped"):
            continue
        captures = entry.get("captures")
        outcome = cast(StepOutcomeKind, entry["outcome"])
        state[str(name)] = (outcome, captures if isinstance(captures, dict) else {})
    return state


def steps_of(text: str | None) -> tuple[StepOutcome, ...]:
    """An attempt's steps as stored in `attempts.steps` (none when unreadable)."""
    found = _loads(text)
    if not isinstance(found, list):
        return ()
    steps = []
    for entry in found:
        if not isinstance(entry, dict) or entry.get("outcome") not in _OUTCOMES:
            continue
        shown = entry.get("captures")
        exchange = entry.get("exchange")
        steps.append(
            StepOutcome(
                name=str(entry.get("name", "")),
                outcome=cast(StepOutcomeKind, entry["outcome"]),
                shown=shown if isinstance(shown, dict) else {},
                exchange=exchange_of(exchange) if isinstance(exchange, dict) else None,
                earlier=bool(entry.get("earlier")),
            )
        )
    return tuple(steps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _loads(text: str | None) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
