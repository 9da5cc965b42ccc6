"""Runtime.load on reload: every new sink is built before anything is swapped, and the
replaced sinks are closed once their in-flight sends can have finished; a reload compiles
rules.yaml off the event loop, one at a time."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.config import runtime as runtime_module
from router.config.runtime import Runtime
from router.config.schema import ConfigError
from router.core.metrics import Metrics
from router.engine.requests import build_and_transmit
from sinks.base import DeliveryRequest, SinkResources
from sinks.http import HttpSink
from tests.conftest import fresh_event
from tests.receivers import Receiver
from tests.service import ADMIN_TOKEN, parts, running_service, wait_for

RULES = """
version: 1
sinks:
  crm: {type: http, url: "%(url)s", timeout: %(timeout)s}
  console: {type: log, path: "%(log)s"}
rules:
  - name: all
    to: [crm, console]
"""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver(delay=0.3).start()
    yield started
    await started.close()


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    # No shared HTTP session: the HTTP sink opens one of its own, which close() releases.
    return Runtime(tmp_path / "rules.yaml", Metrics(), SinkResources())


def write(runtime: Runtime, receiver: Receiver, *, timeout: str = "2s") -> None:
    Path(runtime.config_path).write_text(
        RULES
        % {
            "url": receiver.url(),
            "timeout": timeout,
            "log": Path(runtime.config_path).with_name("out.jsonl"),
        }
    )


def rename_the_rule(path: Path) -> None:
    path.write_text(path.read_text().replace("name: all", "name: renamed"))


def request() -> DeliveryRequest:
    event = fresh_event()
    return DeliveryRequest("dlv-1", event["id"], "crm", "all", event, 1, payload=json.dumps(event))


def own_session_open(sink: HttpSink) -> bool:
    session = sink._own_session
    return session is not None and not session.closed


async def test_a_replaced_sink_is_closed_after_its_send_in_flight_finished(
    runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "RETIRED_SINK_MARGIN", 0.1, raising=False)
    write(runtime, receiver)
    runtime.load()
    old = runtime.sinks["crm"]
    assert isinstance(old, HttpSink)

    sent = request()
    in_flight = asyncio.create_task(build_and_transmit(old, sent))
    await wait_for(lambda: own_session_open(old))
    await runtime.reload("test")  # the receiver answers 0.3 s later; the grace is 2 s + margin
    assert runtime.sinks["crm"] is not old

    await in_flight  # finished with the old sink, whose session was still open
    assert receiver.delivered_ids() == [sent.event_id]
    assert own_session_open(old)
    await wait_for(lambda: old._own_session is None, limit=10)


async def test_shutdown_closes_replaced_sinks_at_once(runtime: Runtime, receiver: Receiver) -> None:
    write(runtime, receiver, timeout="60s")
    runtime.load()
    old = runtime.sinks["crm"]
    assert isinstance(old, HttpSink)
    await build_and_transmit(old, request())
    await runtime.reload("test")
    current = runtime.sinks["crm"]
    assert isinstance(current, HttpSink)
    await build_and_transmit(current, request())
    assert own_session_open(old) and own_session_open(current)

    await runtime.close()
    assert old._own_session is None
    assert current._own_session is None


async def test_a_sink_that_cannot_be_built_keeps_the_running_config_and_sinks(
    runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(runtime, receiver)
    config = runtime.load()
    sinks = dict(runtime.sinks)
    built = []

    def build_sink(name, settings, resources):
        if name == "console":
            raise OSError("log file unreachable")
        sink = HttpSink(name, settings, resources)
        built.append(sink)
        return sink

    monkeypatch.setattr(runtime_module, "build_sink", build_sink)
    rename_the_rule(Path(runtime.config_path))
    problems = await runtime.reload("test")

    assert isinstance(problems, ConfigError)
    (error,) = problems.errors
    assert str(error) == (
        f"{runtime.config_path}:5:3: sink 'console' cannot be built: log file unreachable"
    )
    assert runtime.config is config
    assert runtime.sinks == sinks
    assert [rule.name for rule in runtime.config.rules] == ["all"]
    assert runtime.metrics.reload_successful._value.get() == 0
    assert len(built) == 1


async def test_the_last_reload_is_remembered_with_its_errors(
    runtime: Runtime, receiver: Receiver
) -> None:
    write(runtime, receiver)
    runtime.load()
    assert runtime.last_reload is not None and runtime.last_reload.succeeded
    assert runtime.last_reload.trigger == "start"
    Path(runtime.config_path).write_text("version: 2\n")  # noqa: ASYNC240
    assert await runtime.reload("POST /admin/reload") is not None
    failed = runtime.last_reload
    assert failed.trigger == "POST /admin/reload" and not failed.succeeded
    assert any("version" in error for error in failed.errors)
    assert failed.at >= runtime.loaded_at
    write(runtime, receiver)
    assert await runtime.reload("file changed") is None
    assert runtime.last_reload.succeeded and runtime.last_reload.trigger == "file changed"


async def test_the_loop_keeps_answering_while_a_reload_compiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f'version: 1\nsinks:\n  console: {{type: log, path: "{tmp_path / "out.jsonl"}"}}\n'
        "rules:\n  - {name: all, to: [console]}\n"
    )
    compiling, release, compiled = threading.Event(), threading.Event(), threading.Event()
    real_load_config = runtime_module.load_config

    def slow_load_config(*args: object, **kwargs: object) -> object:
        compiling.set()
        release.wait(timeout=10)  # only a safety valve: compiled on the loop, this blocks it
        try:
            return real_load_config(*args, **kwargs)
        finally:
            compiled.set()

    async with running_service(rules, tmp_path / "r.db") as client:
        monkeypatch.setattr(runtime_module, "load_config", slow_load_config)
        rules.write_text(rules.read_text().replace("name: all", "name: renamed"))
        reloading = asyncio.create_task(
            client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        )
        assert await asyncio.to_thread(compiling.wait, 10)
        health = await client.get("/healthz")
        answered_while_compiling = not compiled.is_set()
        release.set()
        reloaded = await reloading

        assert health.status == 200
        assert answered_while_compiling, "the reload compiled on the event loop"
        assert reloaded.status == 200 and (await reloaded.json())["status"] == "reloaded"
        _, _, runtime, _ = parts(client)
        assert [rule.name for rule in runtime.config.rules] == ["renamed"]


async def test_reloads_asked_at_once_run_one_after_the_other(
    runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(runtime, receiver)
    runtime.load()
    running, most = 0, 0
    real_load_config = runtime_module.load_config

    def counting_load_config(*args: object, **kwargs: object) -> object:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            return real_load_config(*args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(runtime_module, "load_config", counting_load_config)
    outcomes = await asyncio.gather(*(runtime.reload(f"reload {n}") for n in range(5)))
    assert outcomes == [None] * 5
    assert most == 1
    assert runtime.last_reload is not None and runtime.last_reload.trigger == "reload 4"


def test_a_load_logs_each_allowed_user_that_is_not_a_user_id(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    Path(runtime.config_path).write_text(
        "version: 1\nsinks:\n  ops-slack:\n    type: slack\n"
        "    webhook_url: https://hooks.slack.com/services/T/B/x\n"
        "    signing_secret: s\n    actions: {allowed_users: [U0ALICE, alice]}\n"
        "rules: [{name: all, to: [ops-slack]}]\n"
    )
    with caplog.at_level("WARNING", logger="router.config.runtime"):
        runtime.load()
    [warning] = [r.getMessage() for r in caplog.records if "allowed_users" in r.getMessage()]
    assert warning.startswith(
        "sink ops-slack: actions.allowed_users.1: 'alice' is not a Slack user id"
    )


def test_a_load_says_an_unconfigured_sink_needs_a_restart_for_its_variable(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    Path(runtime.config_path).write_text(
        "version: 1\nsinks:\n"
        "  ops-slack: {type: slack, webhook_url: '${RELOAD_TEST_UNSET_HOOK:-}'}\n"
        "  crm: {type: http, url: ''}\n"
        "rules: [{name: all, to: [ops-slack, crm]}]\n"
    )
    with caplog.at_level("WARNING", logger="router.config.runtime"):
        runtime.load()
    lines = {r.getMessage() for r in caplog.records if "not configured" in r.getMessage()}
    assert lines == {
        "sink ops-slack is not configured (webhook_url empty): its deliveries wait until"
        " RELOAD_TEST_UNSET_HOOK is set in the environment and the router restarted"
        " (a reload does not read the environment)",
        "sink crm is not configured (url empty): its deliveries wait until rules.yaml"
        " gives url a value and is reloaded",
    }
