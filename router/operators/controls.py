"""The operators' controls in force, held in memory for the hot path: silences not yet
over and sink pauses still running, read from the store every second (so a silence or a
pause made on another replica, or by the CLI, applies here within 2 seconds) and at
once after a change made through this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.operators.silences import to_silence
from router.rules import Silence
from router.store import Operators, SilenceRecord, SinkPause

log = logging.getLogger("router.operators.controls")

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class KnownSilence:
    record: SilenceRecord
    silence: Silence


def silence_before_send(
    known: Iterable[KnownSilence],
    events: list[Mapping[str, Any]],
    sink: str,
    now: float,
    replayed_at: float | None,
) -> Silence | None:
    """`OperatorControls.silence_before_send` over the silences `known`."""
    instant = datetime.fromtimestamp(now, UTC)
    for item in known:
        if replayed_at is not None and item.record.created_at <= replayed_at:
            continue
        silence = item.silence
        if not (silence.active_at(instant) and silence.covers(sink)):
            continue
        if events and all(silence.condition(event) for event in events):
            return silence
    return None


class OperatorControls:
    """Silences and sink pauses as last read from the store."""

    def __init__(
        self,
        store: Operators,
        clock: Callable[[], float] = time.time,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.silences: tuple[KnownSilence, ...] = ()
        self.pauses: dict[str, SinkPause] = {}
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` after each refresh (the delivery lanes look again)."""
        self._listeners.append(callback)

    async def refresh(self) -> None:
        now = self.clock()
        records = await self.store.list_silences(ended_after=now)
        known = []
        for record in records:
            try:
                known.append(KnownSilence(record, to_silence(record)))
            except Exception:  # validated when created; a hand-edited row must not stop us
                log.exception("silence %s cannot be applied", record.id)
        pauses = {pause.sink: pause for pause in await self.store.sink_pauses(now)}
        changed = pauses != self.pauses
        self.silences, self.pauses = tuple(known), pauses
        if changed:
            for callback in self._listeners:
                callback()

    async def start(self) -> None:
        try:
            await self.refresh()
        except Exception:
            log.exception("cannot read silences and sink pauses; retrying")
        self._task = asyncio.create_task(self._poll(), name="operator-controls")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # the store is down: keep the last known controls
                log.debug("cannot refresh silences and sink pauses: %s", exc)

    def active_silences(self, now: float) -> list[Silence]:
        """The silences in force at `now`, oldest start first."""
        instant = datetime.fromtimestamp(now, UTC)
        return [known.silence for known in self.silences if known.silence.active_at(instant)]

    def silence_before_send(
        self, events: list[Mapping[str, Any]], sink: str, now: float, replayed_at: float | None
    ) -> Silence | None:
        """The silence that mutes a delivery about to be sent at `now`, or None.

        A digest (several `events`) is muted only when one silence matches every call in
        it. A delivery an operator replayed (`replayed_at`) is sent despite silences that
        existed when it was replayed: the operator asked for it; a later one mutes it.
        """
        return silence_before_send(self.silences, events, sink, now, replayed_at)

    def pause_of(self, sink: str, now: float) -> SinkPause | None:
        """The hand-made pause holding `sink` at `now`, if any."""
        pause = self.pauses.get(sink)
        return pause if pause is not None and pause.until > now else None
