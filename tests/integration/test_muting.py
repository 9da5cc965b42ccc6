"""The operators' controls at work in the real service (DESIGN.md sections 6 and 9): muted
deliveries from time intervals and silences, silences checked again before each send,
sinks paused by hand, and requests refused with every problem named."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from router.cli.main import main as cli_main
from router.core.pacing import PauseSettings
from router.engine.delivery import EngineSettings
from tests.conftest import fresh_event
from tests.receivers import Receiver
from tests.service import ADMIN_TOKEN, post_event, running_service, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SOON = datetime.now(UTC) + timedelta(days=2)


def rules(url: str, *, retry: str = "{max_attempts: 3, initial_delay: 100ms, max_delay: 200ms}"):
    return f"""
version: 1
defaults:
  retry: {retry}
time_intervals:
  always:
    - weekdays: ['sunday:saturday']
sinks:
  crm:
    type: http
    url: "{url}/crm"
  other:
    type: http
    url: "{url}/other"
rules:
  - name: quiet
    when: {{status: FAILED}}
    to: [crm, other]
    muted_during: [always]
  - name: loud
    when: {{status: FAILED, direction: OUTBOUND}}
    to: [other]
  - name: completed
    when: {{status: COMPLETED}}
    to: [crm]
"""


def base_url(receiver: Receiver) -> str:
    return receiver.url("").rstrip("/")


def sent_to(receiver: Receiver, path: str) -> list[str | None]:
    return [r.call_id for r in receiver.received if r.path == path and r.status < 300]


async def deliveries(client, **query: str) -> list[dict]:
    answer = await client.get("/admin/deliveries", params=query, headers=ADMIN)
    assert answer.status == 200
    return await answer.json()


async def test_a_call_in_a_muted_interval_is_recorded_muted_and_sent_once_replayed(
    tmp_path, write_rules, receiver
):
    path = write_rules(rules(base_url(receiver)))
    async with running_service(path, tmp_path / "r.db") as client:
        event = fresh_event(status="FAILED", direction="OUTBOUND")
        answer = await post_event(client, event)
        assert (await answer.json())["deliveries"] == 2

        await wait_for(lambda: sent_to(receiver, "/other") == [event["id"]])
        [muted] = await deliveries(client, status="muted")
        assert (muted["sink"], muted["rule"], muted["muted_reason"]) == (
            "crm",
            "quiet",
            "time_interval:always",
        )
        [other] = await deliveries(client, sink="other")
        assert (other["status"], other["rule"]) == ("delivered", "loud")
        text = await (await client.get("/metrics")).text()
        assert (
            'revring_router_deliveries_muted_total{reason="time_interval",sink="crm"} 1.0' in text
        )
        await asyncio.sleep(0.5)  # more than the lanes' idle poll: a muted one stays unsent
        assert sent_to(receiver, "/crm") == []

        replayed = await client.post(f"/admin/deliveries/{muted['id']}/replay", headers=ADMIN)
        assert replayed.status == 200
        await wait_for(lambda: sent_to(receiver, "/crm") == [event["id"]])
        view = await (await client.get(f"/admin/deliveries/{muted['id']}", headers=ADMIN)).json()
        assert (view["status"], view["muted_reason"]) == ("delivered", None)


def fast_breaker() -> EngineSettings:
    return EngineSettings(
        lease_seconds=5.0,
        idle_poll=0.2,
        unconfigured_check=0.2,
        shutdown_grace=2.0,
        pause=PauseSettings(failures_to_pause=10_000, first_pause=0.1, max_pause=0.2),
    )


async def test_a_silence_quiets_deliveries_already_retrying_and_replay_brings_them_through(
    tmp_path, write_rules, receiver
):
    failing = True
    receiver.answer = lambda request, n: 500 if failing else 200
    retry = "{max_attempts: 1000, initial_delay: 100ms, max_delay: 300ms, max_age: 1h}"
    path = write_rules(rules(base_url(receiver), retry=retry))
    database = tmp_path / "r.db"
    async with running_service(path, database, engine=fast_breaker()) as client:
        calls = [fresh_event(status="COMPLETED") for _ in range(200)]
        for event in calls:
            assert (await post_event(client, event)).status == 200
        every_call = {event["id"] for event in calls}
        # Every one of the 200 has been tried and failed: they are all retrying.
        await wait_for(
            lambda: {r.call_id for r in receiver.received if r.path == "/crm"} == every_call,
            limit=60,
        )

        created = await client.post(
            "/admin/silences",
            json={"when": {"status": "COMPLETED"}, "for": "1h", "sinks": ["crm"], "comment": "x"},
            headers=ADMIN,
        )
        assert created.status == 201
        silence = await created.json()
        assert (silence["state"], silence["sinks"]) == ("active", ["crm"])
        silenced_at = time.time()

        async def all_muted() -> bool:
            return len(await deliveries(client, status="muted", limit="1000")) == 200

        await wait_for(all_muted, limit=30)
        tried = len(receiver.received)
        # Sends already under way when the silence came can still arrive; no send starts after.
        late = [r for r in receiver.received if r.at > silenced_at]
        assert len(late) <= fast_breaker().claim_batch
        muted = await deliveries(client, status="muted", limit="1000")
        assert {d["muted_reason"] for d in muted} == {f"silence:{silence['id']}"}
        await asyncio.sleep(1.0)  # many retry delays: nothing more goes out
        assert len(receiver.received) == tried
        text = await (await client.get("/metrics")).text()
        assert 'revring_router_deliveries_muted_total{reason="silence",sink="crm"} 200.0' in text

        expired = await client.delete(f"/admin/silences/{silence['id']}", headers=ADMIN)
        assert (await expired.json())["state"] == "expired"
        listed = await (await client.get("/admin/silences?state=expired", headers=ADMIN)).json()
        assert [s["id"] for s in listed] == [silence["id"]]
        failing = False
        argv = ["replay", "--status", "muted", "--sink", "crm", "--store", f"sqlite:///{database}"]
        assert await asyncio.to_thread(cli_main, argv) == 0
        await wait_for(lambda: set(sent_to(receiver, "/crm")) == every_call, limit=60)
        assert await deliveries(client, status="muted") == []


async def test_a_replay_is_sent_even_while_the_silence_that_muted_it_lasts(
    tmp_path, write_rules, receiver
):
    path = write_rules(rules(base_url(receiver)))
    async with running_service(path, tmp_path / "r.db") as client:
        created = await client.post(
            "/admin/silences", json={"when": {"status": "COMPLETED"}, "for": "1h"}, headers=ADMIN
        )
        assert created.status == 201
        silence_id = (await created.json())["id"]
        event = fresh_event(status="COMPLETED")
        await post_event(client, event)
        [muted] = await deliveries(client, status="muted")
        assert muted["muted_reason"] == f"silence:{silence_id}"

        await client.post(f"/admin/deliveries/{muted['id']}/replay", headers=ADMIN)
        await wait_for(lambda: sent_to(receiver, "/crm") == [event["id"]])


async def test_a_pause_holds_a_sink_across_a_restart_of_serve_until_resumed(
    tmp_path, write_rules, receiver
):
    path = write_rules(rules(base_url(receiver)))
    database = tmp_path / "r.db"
    async with running_service(path, database) as client:
        paused = await client.post(
            "/admin/sinks/crm/pause", json={"for": "1h", "comment": "CRM migration"}, headers=ADMIN
        )
        assert paused.status == 200
        answer = await paused.json()
        assert (answer["sink"], answer["paused"], answer["comment"]) == (
            "crm",
            True,
            "CRM migration",
        )

    async with running_service(path, database) as client:
        listed = await (await client.get("/admin/sinks", headers=ADMIN)).json()
        assert {s["sink"]: s["paused"] for s in listed} == {"crm": True, "other": False}
        event = fresh_event(status="COMPLETED")
        await post_event(client, event)
        await asyncio.sleep(0.5)  # more than the lanes' idle poll
        assert sent_to(receiver, "/crm") == []
        [held] = await deliveries(client, sink="crm")
        assert (held["status"], held["attempts"]) == ("pending", 0)
        text = await (await client.get("/metrics")).text()
        assert 'revring_router_sink_paused{sink="crm"} 1.0' in text

        resumed = await client.post("/admin/sinks/crm/resume", headers=ADMIN)
        assert (await resumed.json())["was_paused"] is True
        await wait_for(lambda: sent_to(receiver, "/crm") == [event["id"]])
        text = await (await client.get("/metrics")).text()
        assert 'revring_router_sink_paused{sink="crm"} 0.0' in text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"when": {"status": {"like": "FAILED"}}, "for": "1h"}, "when.status"),
        (
            {
                "when": {"status": "FAILED"},
                "starts_at": SOON.isoformat(),
                "ends_at": (SOON - timedelta(hours=1)).isoformat(),
            },
            "ends_at: must be after starts_at",
        ),
        ({"when": {"status": "FAILED"}, "for": "0s"}, "for: must be longer than 0s"),
        ({"when": {"status": "FAILED"}, "for": "3650d"}, "for: must be at most"),
        ({"when": {"status": "FAILED"}, "for": "1h", "sinks": ["nope"]}, "unknown sink 'nope'"),
        ({"when": {"id": {"exists": True}}, "for": "366d"}, "when: names no values"),
        ({"when": {"not": {"status": "NOPE"}}, "for": "1h"}, "when: names no values"),
        (
            {"when": {"any": [{"status": "FAILED"}, {"id": {"exists": True}}]}, "for": "1h"},
            "when.any.1: this branch of any names no values",
        ),
    ],
)
async def test_a_bad_silence_is_a_422_naming_the_problem_and_nothing_is_stored(
    tmp_path, write_rules, receiver, body, problem
):
    path = write_rules(rules(base_url(receiver)))
    async with running_service(path, tmp_path / "r.db") as client:
        answer = await client.post("/admin/silences", json=body, headers=ADMIN)
        assert answer.status == 422
        errors = (await answer.json())["errors"]
        assert any(problem in error for error in errors), errors
        assert await (await client.get("/admin/silences", headers=ADMIN)).json() == []


async def test_a_bad_pause_is_a_422_and_the_admin_guard_covers_the_controls(
    tmp_path, write_rules, receiver
):
    path = write_rules(rules(base_url(receiver)))
    async with running_service(path, tmp_path / "r.db") as client:
        unknown = await client.post("/admin/sinks/nope/pause", json={"for": "1h"}, headers=ADMIN)
        assert unknown.status == 422
        assert "unknown sink 'nope'" in (await unknown.json())["errors"][0]
        forever = await client.post("/admin/sinks/crm/pause", json={"for": "10y"}, headers=ADMIN)
        assert forever.status == 422
        assert (await client.get("/admin/sinks", headers=ADMIN)).status == 200
        assert all(
            not s["paused"] for s in await (await client.get("/admin/sinks", headers=ADMIN)).json()
        )
        assert (await client.post("/admin/silences", json={})).status == 401
        assert (await client.get("/admin/silences")).status == 401


@pytest.mark.parametrize(  # not UTF-8: 400 (tests/integration/test_request_bodies.py)
    "body", [b"{", b"[" * 100_000, b'"text"', b'{"when": {"a": 1}, "for": "1h"}\x00']
)
async def test_a_body_that_is_not_a_json_object_is_a_422_not_a_500(
    tmp_path, write_rules, receiver, body
):
    path = write_rules(rules(base_url(receiver)))
    async with running_service(path, tmp_path / "r.db") as client:
        for address in ("/admin/silences", "/admin/sinks/crm/pause"):
            answer = await client.post(
                address, data=body, headers={**ADMIN, "Content-Type": "application/json"}
            )
            assert answer.status == 422, (address, await answer.text())
            assert (await answer.json())["errors"]
