"""The named semaphores of a parse worker pool, unlinked as soon as its workers hold them.

A `ProcessPoolExecutor` started from a fork server makes five POSIX semaphores for its
queues (two locks and a bound for the call queue, two locks for the result queue).
They are named, so that each worker, forked from the fork server rather than from the
router, can open them; and Python has its resource tracker process remove them when the
router exits. A router killed with SIGKILL never removes them: the tracker does, and
writes "There appear to be 5 leaked semaphore objects to clean up at shutdown" on
stderr, two lines that are not JSON.

Once every worker of a pool has opened the semaphores, their names serve nothing (the
pool starts no worker later; one that dies breaks it, and a new pool is made): here
they are removed at once, the way a plain fork removes them at creation. The
semaphores live on, held by the router and its workers, and the kernel frees them with
the last of those processes, however it ends: nothing is left for the tracker to clean
up or to warn about.

This reaches into `multiprocessing`'s internals (the semaphores' names, their exit
finalizers); should they change, `unlink_names` does nothing and says so in the log
(the tracker then cleans up as before).
"""

from __future__ import annotations

import logging
import multiprocessing.synchronize
from multiprocessing import util
from multiprocessing.context import ForkServerContext
from typing import Any

log = logging.getLogger("router.engine.parse_workers")


class SemaphoreKeepingContext(ForkServerContext):
    """The fork server start method, keeping every lock and semaphore made through it
    (a pool's queues are), for `unlink_names`."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[Any] = []

    def Lock(self) -> Any:
        lock = super().Lock()
        self.made.append(lock)
        return lock

    def BoundedSemaphore(self, value: int = 1) -> Any:
        semaphore = super().BoundedSemaphore(value)
        self.made.append(semaphore)
        return semaphore


def unlink_names(context: SemaphoreKeepingContext) -> int:
    """Remove the names of the semaphores made through `context` (call it once every
    process that opens them by name has done so): each is unlinked and untracked, and
    its exit finalizer, which would unlink it again, cancelled. How many were."""
    try:
        # CPython's own bookkeeping, not typed: a change there lands in `except` below.
        cleanup = multiprocessing.synchronize.SemLock._cleanup  # type: ignore[attr-defined]
        names = [made._semlock.name for made in context.made]
        finalizers = {
            finalizer._args[0]: finalizer
            for finalizer in list(util._finalizer_registry.values())  # type: ignore[attr-defined]
            if finalizer._callback is cleanup and finalizer._args
        }
    except (AttributeError, TypeError) as exc:
        log.debug("parse workers' semaphores left named: %s", exc)
        return 0
    context.made.clear()
    unlinked = 0
    for name in names:
        finalizer = finalizers.get(name)
        if finalizer is None:  # nothing would unlink it at exit: leave it to the tracker
            continue
        try:
            cleanup(name)  # sem_unlink, then unregister from the resource tracker
        except OSError as exc:
            log.debug("semaphore %s left named: %s", name, exc)
            continue
        finalizer.cancel()
        unlinked += 1
    return unlinked
