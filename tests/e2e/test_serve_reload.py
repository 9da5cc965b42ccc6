"""`revring-router serve` reloads rules.yaml on SIGHUP (compiled off the event loop, see
router.config.runtime), as a real process."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.e2e.test_serve import finish, free_port, start_server, stop, wait_healthy

pytestmark = pytest.mark.slow


async def test_sighup_reloads_the_rules_and_the_server_keeps_serving(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nsinks:\n  console: {type: log}\nrules: [{name: all, to: [console]}]\n"
    )
    port = free_port()
    process = start_server(rules, tmp_path / "r.db", port)
    log = process.stderr_file  # type: ignore[attr-defined]
    try:
        await wait_healthy(port, process)
        process.send_signal(signal.SIGHUP)  # the file is unchanged: only the signal reloads it
        deadline = time.monotonic() + 20
        while "(SIGHUP): 1 rules, 1 sinks" not in (log.seek(0) or log.read()):
            assert time.monotonic() < deadline, log.read()
            await asyncio.sleep(0.05)
        await wait_healthy(port, process)
        process.send_signal(signal.SIGTERM)
        assert "Traceback" not in finish(process)
        assert process.returncode == 0
    finally:
        stop(process)
