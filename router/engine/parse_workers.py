"""Large webhook bodies decoded, validated and routed in worker processes.

orjson and pydantic-core hold the interpreter lock for a whole call, so a 1 MiB body
parsed in a thread of the router still stalls its event loop for tens of milliseconds.
Here `router.engine.prepare` runs in a small pool of processes started from a fork
server (never a plain fork of a process with threads and a running loop).

Compiled rules hold closures and do not pickle: each task carries the rules.yaml text
they came from (`RulesSource`), and a worker compiles it once per content key. Silences
travel as their stored records and are compiled in the worker; the time intervals are
the worker's own compile of the same text; the result (`Prepared` or `Rejection`) is
small.

A worker that dies (killed, out of memory) breaks the whole pool: the pool is replaced
and the call is tried once more in a fresh worker. When that one dies too the body is
the likely cause, and it is not tried in the router's own process (which it could take
down with every call in flight): the caller gets `WorkerLost` and answers 503.

The same pool builds the messages of large calls' deliveries (`router.engine.render_apart`,
through `ParseWorkers.call`). Workers start from a fork server that has imported the
router's modules, with `serve` or with the first large body, off the event loop; each
exits by itself if the router process dies.

The fork server needs a temporary directory (its socket lives there). With none usable
(a read-only root without a writable `/tmp`), the workers keep their files in one of
`spare_temp_dirs` (the SQLite store's directory). When the workers still cannot start,
`WorkersUnavailable` says so (one warning in the log, `unavailable` names the cause, and
/readyz shows it) and the router parses large bodies in its own thread, as with
`ROUTER_PARSE_WORKERS=0`; a start is tried again after `START_RETRY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import select
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson

from router.config import Config, parse_config
from router.engine.pool_semaphores import SemaphoreKeepingContext, unlink_names
from router.engine.prepare import MutingMoment, Prepared, Rejection, prepare
from router.operators import to_silence
from router.rules import CompiledRule
from router.store import SilenceRecord

log = logging.getLogger("router.engine.parse_workers")
T = TypeVar("T")

# Imported once in the fork server, so a new worker starts with them loaded.
PRELOAD = [
    "router.engine.prepare",
    "router.operators.silences",
    "router.config.schema",
    "router.engine.render_apart",
]
STARTING_TASK_SECONDS = 0.1
START_RETRY_SECONDS = 60.0  # after the workers could not start, parse here this long


def default_worker_count() -> int:
    """One fewer than the CPUs this process may run on, at least 1 and at most 2: on two
    cores, two busy workers leave the event loop waiting for a core (measured in
    bench/README.md), and two keep up with `ROUTER_MAX_PARSE_BYTES`' two 1 MiB bodies."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus - 1))


class WorkerLost(Exception):
    """The worker parsing a body died, and so did the fresh one it was retried in."""


class WorkersUnavailable(WorkerLost):
    """The workers cannot start: the body never reached one, and may be parsed here."""


@dataclass(frozen=True)
class RulesSource:
    """What a worker compiles the rules and time intervals from; `key` names the content."""

    key: str
    text: str
    file: str
    variables: dict[str, str] = field(repr=False)

    @classmethod
    def of(cls, config: Config) -> RulesSource:
        digest = hashlib.sha256()
        for part in (config.source, config.path, orjson.dumps(config.variables)):
            digest.update(part.encode() if isinstance(part, str) else part)
            digest.update(b"\0")
        return cls(digest.hexdigest(), config.source, config.path, dict(config.variables))


@dataclass(frozen=True)
class ParseTask:
    """One body to prepare, with what muting is decided from at the moment it came in.
    `rules` None: rules.yaml is not loaded (no rule, no time interval)."""

    body: bytes
    rules: RulesSource | None
    silences: tuple[SilenceRecord, ...]
    instant: datetime


# ---- in the worker process -------------------------------------------------------------

_compiled: tuple[str, Config] | None = None


def compiled_config(source: RulesSource) -> Config:
    """The config `source` compiles to, compiled once per key in this worker."""
    global _compiled
    if _compiled is None or _compiled[0] != source.key:
        _compiled = (source.key, parse_config(source.text, source.file, source.variables))
    return _compiled[1]


def _rules_of(source: RulesSource | None) -> tuple[tuple[CompiledRule, ...], dict[str, Any]]:
    if source is None:
        return (), {}
    config = compiled_config(source)
    return config.rules, config.time_intervals


def prepare_in_worker(task: ParseTask) -> tuple[int, Prepared | Rejection]:
    """`router.engine.prepare.prepare` of the task, and the pid of the process that ran it."""
    rules, intervals = _rules_of(task.rules)
    silences = [to_silence(record) for record in task.silences]
    outcome = prepare(task.body, rules, MutingMoment(intervals, silences, task.instant))
    return os.getpid(), outcome


def _worker_setup(router_pid: int) -> None:
    """In each worker as it starts: ignore Ctrl-C (the router stops its pool itself), and
    exit once the router process is gone (killed, it could not stop the pool: the
    worker would wait on its queue for ever, and keep the fork server alive)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watcher = threading.Thread(target=_exit_with, args=(router_pid,), name="router-watch")
    watcher.daemon = True
    watcher.start()


def _exit_with(pid: int) -> None:
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (not Linux, or before 5.3): poll
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                continue
    select.select([handle], [], [])  # readable once the process has ended
    os._exit(1)


def _started() -> int:
    # Long enough that no worker is idle again before the last one is asked to start.
    time.sleep(STARTING_TASK_SECONDS)
    return os.getpid()


# ---- in the router ---------------------------------------------------------------------


class ParseWorkers:
    """A pool of `workers` processes preparing large bodies; started by `start` (in a
    thread: starting processes blocks) or by the first body, and again after a worker
    dies. `run` is the function a worker applies to a task (tests swap it)."""

    def __init__(
        self,
        workers: int,
        run: Callable[[ParseTask], tuple[int, Prepared | Rejection]] = prepare_in_worker,
        spare_temp_dirs: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError("a parse pool needs at least one worker")
        self.workers = workers
        self.run = run
        self._pool: ProcessPoolExecutor | None = None
        self._creating: asyncio.Task[None] | None = None
        self._source: tuple[Config, RulesSource] | None = None
        self._broken: ProcessPoolExecutor | None = None  # the last pool a task failed in
        self._closed = False
        self.pids: frozenset[int] = frozenset()  # the workers started, last start
        self.last_pid: int | None = None  # the process that prepared the last body
        self.restarts = 0  # pools replaced after a worker died
        self.spare_temp_dirs = tuple(spare_temp_dirs)
        self.temp_dir: str | None = None  # a spare directory in use: none usable otherwise
        self.unavailable: str | None = None  # why the workers cannot start (None: they can)
        self._retry_at = 0.0

    def source_of(self, config: Config | None) -> RulesSource | None:
        """`config`'s `RulesSource`, computed once per loaded config."""
        if config is None:
            return None
        if self._source is None or self._source[0] is not config:
            self._source = (config, RulesSource.of(config))
        return self._source[1]

    async def start(self) -> None:
        """Start the workers now, off the event loop, unless they run already."""
        await self._current_pool(None)

    async def prepare(self, task: ParseTask) -> Prepared | Rejection:
        """The task's outcome from a worker; `WorkerLost` when the worker it ran in died
        and the fresh one it was tried again in died too."""
        return await self.call(self.run, task)

    async def call(self, function: Callable[[Any], tuple[int, T]], task: Any) -> T:
        """`function(task)` in a worker (`function` returns its pid and its result): the
        result, or `WorkerLost` when the worker died and a fresh one died too."""
        broken: ProcessPoolExecutor | None = None
        for attempt in (1, 2):
            pool = None
            try:
                pool = await self._current_pool(broken)
                pid, outcome = await asyncio.wrap_future(self._submit(pool, function, task))
            except BrokenProcessPool as exc:
                log.warning("parse worker lost (attempt %d of 2): %s", attempt, exc)
                # Replaced before the next task runs, this one's retry or another call's:
                # a task never spends a try on a pool broken before it was submitted.
                broken = self._broken = pool
                continue
            self.last_pid = pid
            return outcome
        raise WorkerLost("parse worker died twice")

    def _submit(
        self, pool: ProcessPoolExecutor, function: Callable[[Any], Any], task: Any
    ) -> Future[Any]:
        try:
            return pool.submit(function, task)
        except RuntimeError as exc:  # shut down meanwhile (closing, or replaced)
            if isinstance(exc, BrokenProcessPool):
                raise
            raise BrokenProcessPool(str(exc)) from exc

    async def _current_pool(self, broken: ProcessPoolExecutor | None) -> ProcessPoolExecutor:
        """The pool to use: the running one, or a new one when there is none or when
        `broken` (the pool a task failed in) is still the running one. A start is shared
        by the callers waiting for it and outlives them (a caller cancelled meanwhile
        leaves no pool behind unowned)."""
        while True:
            if self._closed:
                raise BrokenProcessPool("parse workers are closed")
            if self.unavailable is not None and time.monotonic() < self._retry_at:
                raise WorkersUnavailable(self.unavailable)
            if self._creating is not None:
                await asyncio.shield(self._creating)
                continue
            pool = self._pool
            if pool is not None and pool is not broken and pool is not self._broken:
                return pool
            if pool is not None:
                self.restarts += 1
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            self._creating = asyncio.get_running_loop().create_task(self._create())
            self._creating.add_done_callback(_retrieved)

    async def _create(self) -> None:
        try:
            pool, pids = await asyncio.to_thread(self._new_pool)
        except (OSError, BrokenProcessPool) as exc:
            if self.unavailable is None:
                log.warning(
                    "parse workers cannot start (%s): large bodies are parsed in the"
                    " router's own thread",
                    exc,
                )
            self.unavailable = f"cannot start: {type(exc).__name__}"
            self._retry_at = time.monotonic() + START_RETRY_SECONDS
            raise WorkersUnavailable(f"cannot start parse workers: {exc}") from exc
        finally:
            self._creating = None
        if self.unavailable is not None:
            log.warning("parse workers started: large bodies are parsed in them again")
            self.unavailable = None
        if self._closed:
            pool.shutdown(wait=False, cancel_futures=True)
        else:
            self._pool, self.pids = pool, pids

    def _new_pool(self) -> tuple[ProcessPoolExecutor, frozenset[int]]:
        if self.temp_dir is None:
            self.temp_dir = use_spare_temp_dir(self.spare_temp_dirs)
        context = SemaphoreKeepingContext()
        context.set_forkserver_preload(PRELOAD)
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_worker_setup,
            initargs=(os.getpid(),),
        )
        # Each submit while no worker is idle starts one: all of them start here, and
        # none in the first bodies' submits (on the event loop).
        try:
            started = [pool.submit(_started) for _ in range(self.workers)]
            pids = frozenset(future.result() for future in started)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        if len(pids) == self.workers:  # every worker opened the pool's semaphores
            unlink_names(
                context
            )  # a killed router leaves none behind (router.engine.pool_semaphores)
        return pool, pids

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def use_spare_temp_dir(spare: Sequence[str]) -> str | None:
    """None when this process has a usable temporary directory; else the first of `spare`
    a file can be made in, made this process's (and its children's) temporary directory.
    With none, the fork server cannot start: its error says why."""
    try:
        tempfile.gettempdir()
        return None
    except OSError as exc:
        missing = exc
    for directory in spare:
        try:
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError:
            continue
        tempfile.tempdir = directory
        os.environ["TMPDIR"] = directory  # the fork server is a new interpreter
        log.warning(
            "%s: parse workers keep their temporary files in %s (mount a writable /tmp)",
            missing,
            directory,
        )
        return directory
    return None


def _retrieved(task: asyncio.Task[None]) -> None:
    """Mark a pool start's failure as seen: each caller that waited for it saw it."""
    if not task.cancelled():
        task.exception()


def active_silence_records(controls: Any, instant: datetime) -> tuple[SilenceRecord, ...]:
    """The stored records of the silences `controls.active_silences` gives at `instant`,
    in its order (`controls`: a `router.operators.controls.OperatorControls`, or None)."""
    if controls is None:
        return ()
    known: Sequence[Any] = controls.silences
    return tuple(item.record for item in known if item.silence.active_at(instant))
