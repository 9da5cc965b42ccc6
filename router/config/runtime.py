"""The service's live configuration: the loaded rules.yaml and the sinks built from it.

Reloading reads and compiles rules.yaml in a worker thread (its templates, `when`
blocks and regexes: a large or slow file never holds up the event loop, which keeps
answering webhooks meanwhile), one reload at a time, then builds every new sink: if
rules.yaml is invalid or a sink cannot be built, the running config and sinks stay.
Otherwise both are swapped at once; in-flight sends finish with the sink they started
with, the next attempt of any delivery uses the new settings, and each replaced sink is
closed once its sends can have finished (its own send timeout, plus a margin).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from router.config.schema import Config, ConfigError, load_config
from router.config.yaml_source import Position, SourceError
from router.core.metrics import Metrics
from router.operators.users import UsersFile, UsersFileInvalid
from sinks.base import Sink, SinkResources
from sinks.registry import build_sink

log = logging.getLogger("router.config.runtime")

# A replaced sink is closed this long after its own send timeout, so a send that
# started just before the reload finishes with it.
RETIRED_SINK_MARGIN = 5.0


@dataclass(frozen=True)
class ReloadOutcome:
    """The last attempt to load rules.yaml: when, what triggered it, and its errors
    (none: it succeeded)."""

    at: float
    trigger: str
    errors: tuple[str, ...] = field(default=())

    @property
    def succeeded(self) -> bool:
        return not self.errors


class Runtime:
    def __init__(
        self,
        config_path: str | Path,
        metrics: Metrics,
        resources: SinkResources,
        environ: Mapping[str, str] | None = None,
        users: UsersFile | None = None,
    ) -> None:
        self.config_path = str(config_path)
        self.users = users  # ROUTER_USERS_FILE: read at start and with every reload
        self.metrics = metrics
        self.resources = resources
        self.environ = environ
        self._config: Config | None = None
        self.loaded_at = 0.0  # when the running rules.yaml was loaded
        self.last_reload: ReloadOutcome | None = None  # the last load, failed or not
        self.sinks: dict[str, Sink] = {}
        self._reload_listeners: list[Callable[[], None]] = []
        self._retiring: dict[asyncio.Task[None], list[Sink]] = {}
        self._reloading = asyncio.Lock()  # one reload at a time, in the order asked
        self._signalled: set[asyncio.Task[ConfigError | None]] = set()

    @property
    def config(self) -> Config:
        if self._config is None:
            raise RuntimeError("rules.yaml is not loaded")
        return self._config

    @property
    def loaded(self) -> bool:
        return self._config is not None

    def on_reload(self, callback: Callable[[], None]) -> None:
        self._reload_listeners.append(callback)

    def load(self, trigger: str = "start") -> Config:
        """Load rules.yaml and build its sinks, here and now (at start, before serving);
        on failure keep what runs and raise `ConfigError` with every problem. The users
        file first: one that is invalid stops the start as rules.yaml does."""
        if self.users is not None:
            try:
                self.users.load(time.time())
            except UsersFileInvalid as exc:
                failure = users_file_error(exc)
                self._failed(trigger, failure)
                raise failure from None
        try:
            return self._install(load_config(self.config_path, self.environ), trigger)
        except ConfigError as exc:
            self._failed(trigger, exc)
            raise

    def _failed(self, trigger: str, exc: ConfigError) -> None:
        self.metrics.reload_successful.set(0)
        self.last_reload = ReloadOutcome(time.time(), trigger, tuple(map(str, exc.errors)))

    def _install(self, config: Config, trigger: str) -> Config:
        """Build `config`'s sinks and swap both in; `ConfigError` (nothing swapped) when
        a sink cannot be built."""
        sinks = self._build_sinks(config)
        replaced = list(self.sinks.values())
        self._config = config
        self.loaded_at = time.time()
        self.last_reload = ReloadOutcome(self.loaded_at, trigger)
        self.sinks = sinks
        self._retire(replaced)
        self.metrics.reload_successful.set(1)
        self.metrics.reload_timestamp.set(time.time())
        for name, missing in config.unconfigured_sinks().items():
            log.warning(
                "sink %s is not configured (%s empty): %s",
                name,
                ", ".join(missing),
                config.waiting_for(name),
                extra={"sink": name},
            )
        for name, sink in config.sinks.items():
            for path, problem in sink.setting_warnings():  # what `check` warns about
                where = ".".join(str(part) for part in path)
                log.warning("sink %s: %s: %s", name, where, problem, extra={"sink": name})
        for callback in self._reload_listeners:
            callback()
        return config

    def _build_sinks(self, config: Config) -> dict[str, Sink]:
        """Every sink of `config`, or `ConfigError` naming each one that cannot be built
        (those built already are closed)."""
        sinks: dict[str, Sink] = {}
        errors: list[SourceError] = []
        for name, settings in config.sinks.items():
            try:
                sinks[name] = build_sink(name, settings, self.resources)
            except Exception as exc:
                position = config.sink_positions.get(name, Position(1, 1))
                errors.append(
                    SourceError(config.path, position, f"sink {name!r} cannot be built: {exc}")
                )
        if errors:
            self._retire(list(sinks.values()), at_once=True)
            raise ConfigError(errors)
        return sinks

    def _retire(self, sinks: list[Sink], *, at_once: bool = False) -> None:
        """Close `sinks` in the background: at once, or after their sends can finish."""
        if not sinks:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop, so nothing of theirs is in flight or open
        grace = 0.0 if at_once else _send_time_limit(sinks) + RETIRED_SINK_MARGIN
        task = loop.create_task(self._close_after(sinks, grace), name="close-replaced-sinks")
        self._retiring[task] = sinks
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    @staticmethod
    async def _close_after(sinks: list[Sink], grace: float) -> None:
        await asyncio.sleep(grace)
        await _close_all(sinks)

    async def close(self) -> None:
        """Close the running sinks and those replaced by a reload, now (at shutdown)."""
        retiring = dict(self._retiring)
        for task in retiring:
            task.cancel()
        await asyncio.gather(*retiring, return_exceptions=True)
        await _close_all([*self.sinks.values(), *(s for group in retiring.values() for s in group)])

    async def reload(self, trigger: str) -> ConfigError | None:
        """Load rules.yaml again, compiled off the event loop; on failure keep the running
        config, log every problem and return them."""
        async with self._reloading:
            users_failure = await self._reload_users(trigger)
            try:
                compiled = await asyncio.to_thread(load_config, self.config_path, self.environ)
                config = self._install(compiled, trigger)
            except ConfigError as exc:
                for error in exc.errors:
                    log.error("reload (%s) failed, keeping the running rules: %s", trigger, error)
                if users_failure is not None:
                    exc = ConfigError([*users_failure.errors, *exc.errors])
                self._failed(trigger, exc)
                return exc
            if users_failure is not None:
                self._failed(trigger, users_failure)
                return users_failure
        log.info(
            "reloaded %s (%s): %d rules, %d sinks",
            self.config_path,
            trigger,
            len(config.rules),
            len(config.sinks),
        )
        return None

    async def _reload_users(self, trigger: str) -> ConfigError | None:
        """Read the users file again (off the loop); when it is invalid, keep the users
        read before, log every problem and return them."""
        if self.users is None:
            return None
        try:
            users = await asyncio.to_thread(self.users.load, time.time())
        except UsersFileInvalid as exc:
            failure = users_file_error(exc)
            for error in failure.errors:
                log.error(
                    "reload (%s): the users file is invalid, keeping the users: %s", trigger, error
                )
            return failure
        log.info("read %d users from %s (%s)", len(users), self.users.path, trigger)
        return None

    def reload_soon(self, trigger: str) -> None:
        """Start a reload in the background (for a signal handler, which cannot wait)."""
        task = asyncio.get_running_loop().create_task(self.reload(trigger), name="reload")
        self._signalled.add(task)
        task.add_done_callback(self._signalled.discard)


def users_file_error(exc: UsersFileInvalid) -> ConfigError:
    """The users file's problems as a `ConfigError`, each at FILE:LINE:COL."""
    return ConfigError(
        [
            SourceError(exc.path, Position(problem.line, problem.column), problem.message)
            for problem in exc.problems
        ]
    )


def _send_time_limit(sinks: list[Sink]) -> float:
    """The longest send timeout among `sinks` (a sink without one: none)."""
    limits = [getattr(sink.config, "timeout", None) for sink in sinks]
    return max((float(limit) for limit in limits if isinstance(limit, int | float)), default=0.0)


async def _close_all(sinks: list[Sink]) -> None:
    for sink in sinks:
        try:
            await sink.close()
        except Exception:
            log.exception("closing sink %s failed", sink.name, extra={"sink": sink.name})


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _signature(stat: os.stat_result | None) -> tuple[float, int, int] | None:
    return None if stat is None else (stat.st_mtime, stat.st_size, stat.st_ino)


def cannot_change(stat: os.stat_result | None) -> bool:
    """Whether the file `stat` describes is one no edit can reach any more: its path
    shows a file with no link left (replaced by `sed -i`, an editor, Ansible or
    `git checkout`, under a single-file bind mount that keeps showing the old one)."""
    return stat is not None and stat.st_nlink == 0


async def watch_config_file(runtime: Runtime, interval: float = 2.0) -> None:
    """Reload rules.yaml whenever it or the users file changes (polled: works on every
    file system, bind mounts and Kubernetes ConfigMap symlink swaps included), and warn,
    once each time it happens, when rules.yaml can no longer change."""

    def signature(config: os.stat_result | None) -> tuple[tuple[float, int, int] | None, ...]:
        users = None if runtime.users is None else _signature(_stat(runtime.users.path))
        return (_signature(config), users)

    config = _stat(runtime.config_path)
    last, stuck = signature(config), False
    while True:
        await asyncio.sleep(interval)
        config = _stat(runtime.config_path)
        if cannot_change(config) and not stuck:
            log.warning(
                "%s was replaced but this path still shows the old file (a single-file"
                " bind mount does): later edits will not be seen; mount its directory"
                " instead and point ROUTER_CONFIG at the file in it",
                runtime.config_path,
            )
        stuck = cannot_change(config)
        current = signature(config)
        if current[0] is not None and current != last:
            last = current
            await runtime.reload("file changed")
