"""rules.yaml replaced the way `sed -i` does (a new file renamed over the old one): the
watcher reloads it, and warns once when its path keeps showing the old, unlinked file,
as a single-file bind mount does (issue 32 item 2).

The bind mount is stood in for by `/proc/self/fd/N` of a handle on the old file: a path
that shows the same inode for ever, whatever is renamed over the original."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from router.config import Runtime, watch_config_file
from router.core.metrics import Metrics
from sinks.base import SinkResources

POLL = 0.02
RULES = "version: 1\nsinks:\n  audit: {type: log}\nrules: [{name: all, to: [audit]}]\n"
EDITED = RULES.replace("name: all", "name: edited")
STUCK = "was replaced but this path still shows the old file"


def replace_like_sed(path: Path, text: str) -> None:
    """`sed -i`: write a temporary file beside it, rename it over the original."""
    temporary = path.with_name("sedAbC123")
    temporary.write_text(text)
    os.replace(temporary, path)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "router.config.runtime"]


async def until(condition, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(POLL)


async def watching(path: str):
    runtime = Runtime(path, Metrics(), SinkResources())
    runtime.load()
    watcher = asyncio.create_task(watch_config_file(runtime, POLL))
    await asyncio.sleep(0)  # it has looked at the file once: a change after this is seen
    return runtime, watcher


async def test_a_pinned_path_warns_once_and_names_the_file(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "router.config.runtime")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    handle = os.open(rules, os.O_RDONLY)
    pinned = f"/proc/self/fd/{handle}"
    runtime, watcher = await watching(pinned)
    try:
        replace_like_sed(rules, EDITED)
        await until(lambda: any(STUCK in line for line in warnings_of(caplog)))
        # Many polls later, still one warning for this one occurrence.
        await asyncio.sleep(POLL * 20)
        stuck = [line for line in warnings_of(caplog) if STUCK in line]
        assert len(stuck) == 1
        assert pinned in stuck[0]
        assert "mount its directory" in stuck[0]
        assert [rule.name for rule in runtime.config.rules] == ["all"]  # the old file
    finally:
        watcher.cancel()
        os.close(handle)
        await runtime.close()


async def test_a_directory_path_reloads_and_does_not_warn(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "router.config.runtime")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    runtime, watcher = await watching(str(rules))
    try:
        replace_like_sed(rules, EDITED)
        await until(lambda: [rule.name for rule in runtime.config.rules] == ["edited"])
        assert not [line for line in warnings_of(caplog) if STUCK in line]
    finally:
        watcher.cancel()
        await runtime.close()


def update_like_the_kubelet(directory: Path, version: str, text: str) -> None:
    """A ConfigMap mounted as a directory: `rules.yaml -> ..data/rules.yaml`, and an
    update writes a new timestamped directory, points `..data` at it with a rename, and
    removes the old one (the kubelet's atomic writer)."""
    fresh = directory / f"..{version}"
    fresh.mkdir()
    (fresh / "rules.yaml").write_text(text)
    old = directory / "..data"
    previous = os.readlink(old) if old.is_symlink() else None
    (directory / "..data_tmp").symlink_to(fresh.name)
    os.replace(directory / "..data_tmp", old)
    if not (directory / "rules.yaml").is_symlink():
        (directory / "rules.yaml").symlink_to("..data/rules.yaml")
    if previous is not None:
        (directory / previous / "rules.yaml").unlink()
        (directory / previous).rmdir()


async def test_a_configmap_directory_update_reloads_and_does_not_warn(tmp_path, caplog):
    # deploy/kubernetes mounts the ConfigMap as a directory (issue 32 item 7).
    caplog.set_level(logging.WARNING, "router.config.runtime")
    update_like_the_kubelet(tmp_path, "2026_12_07_12_00_00.1", RULES)
    runtime, watcher = await watching(str(tmp_path / "rules.yaml"))
    try:
        update_like_the_kubelet(tmp_path, "2026_12_07_12_01_00.2", EDITED)
        await until(lambda: [rule.name for rule in runtime.config.rules] == ["edited"])
        await asyncio.sleep(POLL * 5)
        assert not [line for line in warnings_of(caplog) if STUCK in line]
    finally:
        watcher.cancel()
        await runtime.close()
