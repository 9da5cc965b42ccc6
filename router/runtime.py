"""The service's live configuration: the loaded rules.yaml and the sinks built from it.

Reloading swaps both at once; in-flight sends finish with the sink they started
with, and the next attempt of any delivery uses the new settings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from router.config import Config, ConfigError, load_config
from router.metrics import Metrics
from sinks.base import Sink, SinkResources
from sinks.registry import build_sink

log = logging.getLogger("router.runtime")


class Runtime:
    def __init__(
        self,
        config_path: str | Path,
        metrics: Metrics,
        resources: SinkResources,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config_path = str(config_path)
        self.metrics = metrics
        self.resources = resources
        self.environ = environ
        self._config: Config | None = None
        self.loaded_at = 0.0  # when the running rules.yaml was loaded
        self.sinks: dict[str, Sink] = {}
        self._reload_listeners: list[Callable[[], None]] = []

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

    def load(self) -> Config:
        """Load rules.yaml and build its sinks; on failure keep what runs and raise
        `ConfigError` with every problem."""
        try:
            config = load_config(self.config_path, self.environ)
        except ConfigError:
            self.metrics.reload_successful.set(0)
            raise
        self._config = config
        self.loaded_at = time.time()
        self.sinks = {
            name: build_sink(name, settings, self.resources)
            for name, settings in config.sinks.items()
        }
        self.metrics.reload_successful.set(1)
        self.metrics.reload_timestamp.set(time.time())
        for name, missing in config.unconfigured_sinks().items():
            log.warning(
                "sink %s is not configured (%s empty): its deliveries wait until a reload sets it",
                name,
                ", ".join(missing),
                extra={"sink": name},
            )
        for callback in self._reload_listeners:
            callback()
        return config

    def reload(self, trigger: str) -> ConfigError | None:
        """Load rules.yaml again; on failure keep the running config, log every problem
        and return them."""
        try:
            config = self.load()
        except ConfigError as exc:
            for error in exc.errors:
                log.error("reload (%s) failed, keeping the running rules: %s", trigger, error)
            return exc
        log.info(
            "reloaded %s (%s): %d rules, %d sinks",
            self.config_path,
            trigger,
            len(config.rules),
            len(config.sinks),
        )
        return None


def _file_signature(path: str) -> tuple[float, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime, stat.st_size, stat.st_ino)


async def watch_config_file(runtime: Runtime, interval: float = 2.0) -> None:
    """Reload rules.yaml whenever the file changes (polled: works on every file system,
    bind mounts and Kubernetes ConfigMap symlink swaps included)."""
    last = _file_signature(runtime.config_path)
    while True:
        await asyncio.sleep(interval)
        current = _file_signature(runtime.config_path)
        if current is not None and current != last:
            last = current
            runtime.reload("file changed")
