"""Whether the store is taking writes, judged from what this process's own writes came to.

Every part that writes (ingest, the delivery lanes, /readyz's probe) reports each
outcome here. An outage is logged once when it starts, with its first error, and once
when it ends, with how long it lasted and how many operations failed meanwhile,
instead of a traceback per failed request (an outage on a full disk must not fill it
faster). While the store is down, /readyz answers 503 (and the delivery lanes back
off on their own, see router.delivery).

`answer_within` bounds a store call without waiting for the abandoned work to notice
its cancellation: a frozen database may never answer the cancel either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from router.store.errors import StoreError

log = logging.getLogger("router.store")

T = TypeVar("T")
Clock = Callable[[], float]

ERROR_TEXT_LIMIT = 300


def describe_error(error: BaseException) -> str:
    """`TypeName: message`, bounded, for a log line or an answer."""
    text = str(error).strip()
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return described[:ERROR_TEXT_LIMIT]


def is_store_failure(error: BaseException) -> bool:
    """Whether an exception raised by a store call means the store is unavailable (as
    opposed to a bug in the caller): the store's own errors, or a call that timed out."""
    return isinstance(error, StoreError | TimeoutError)


async def answer_within(awaitable: Awaitable[T], seconds: float) -> T:
    """The awaitable's result, or `TimeoutError` once `seconds` have passed. On time-out
    the work is cancelled but not waited for. (A store write abandoned this way may
    still commit later: the caller must treat it as "unknown", never as "not written".)

    On the webhook's hot path: a store call that returns a future (the SQLite writer's)
    is awaited with one timer, no task of its own."""
    work = asyncio.ensure_future(awaitable)  # a future stays itself; a coroutine gets a task
    if work.done():
        return work.result()
    loop = asyncio.get_running_loop()
    settled = loop.create_future()

    def wake(_: object = None) -> None:
        if not settled.done():
            settled.set_result(None)

    timer = loop.call_later(seconds, wake)
    work.add_done_callback(wake)
    try:
        await settled
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        timer.cancel()
        work.remove_done_callback(wake)
    if work.done():
        return work.result()
    work.cancel()
    work.add_done_callback(_retrieve)
    raise TimeoutError(f"the store did not answer within {seconds:g} s")


def _retrieve(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "never retrieved"


class StoreHealth:
    """The store's recent record, as seen by this process (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        self.down_since: float | None = None
        self.failures = 0  # operations failed in the current outage
        self.last_error: str | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, error: BaseException) -> None:
        """A store operation failed; the first failure of an outage is logged."""
        self.last_error = describe_error(error)
        if self.down_since is None:
            self.down_since = self.clock()
            self.failures = 0
            log.error(
                "store unavailable: %s; webhooks answer 503 and deliveries wait until it"
                " recovers (logged once; a summary follows when it does)",
                self.last_error,
            )
        self.failures += 1

    def succeeded(self) -> None:
        """A store write went through (one that wrote something: a commit that changed
        nothing proves nothing); ends an outage and logs its summary."""
        if self.down_since is not None:
            now = self.clock()
            log.warning(
                "store available again after %.1f s; %d operation%s failed meanwhile (last: %s)",
                now - self.down_since,
                self.failures,
                "" if self.failures == 1 else "s",
                self.last_error,
            )
            self.down_since = None
            self.failures = 0
