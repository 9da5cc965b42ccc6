"""`on_dead` (DESIGN.md section 16) through the real service: a delivery that goes dead
makes one notice per listed sink, written with the dead mark (a real SQLite file), sent
to a local HTTP receiver as JSON and to the fake Slack as a message; a notice that dies
is not reported again. Many dying at once make one grouped message per notice sink, and
notices pending at a restart all go out after it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from router.store.sqlite import SQLiteStore
from tests.conftest import fresh_event
from tests.receivers import Receiver
from tests.service import fast_engine, parts, post_event, running_service, wait_for
from tests.slack_fake import FakeSlack

PUBLIC_URL = "https://router.example.com"
CALLER = "+14155550142"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.close()


@pytest.fixture
async def crm() -> AsyncIterator[Receiver]:
    """A CRM that refuses every call (HTTP 400: permanent)."""
    started = await Receiver(answer=lambda request, n: 400).start()
    yield started
    await started.close()


def rules(
    crm_url: str,
    notices_url: str,
    slack: FakeSlack | str,
    *,
    notice_on_dead: str = "",
    crm_concurrency: int = 4,
    notice_retry: str = "{max_attempts: 2, initial_delay: 10ms, max_delay: 20ms}",
    notice_timeout: str = "10s",
) -> str:
    slack_base = slack if isinstance(slack, str) else slack.base
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 3, initial_delay: 10ms, max_delay: 20ms}}
sinks:
  crm:
    type: http
    url: "{crm_url}"
    concurrency: {crm_concurrency}
    on_dead: [alerts-http, ops-slack]
  alerts-http:
    type: http
    url: "{notices_url}"
    retry: {notice_retry}
    timeout: {notice_timeout}
    {notice_on_dead}
  ops-slack:
    type: slack
    token: xoxb-test
    channel: "#ops-alerts"
    api_url: "{slack_base}/api/"
    retry: {notice_retry}
rules:
  - name: to-crm
    when: {{status: FAILED}}
    to: [crm]
"""


def notices_at(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.json for r in receiver.received if r.path == "/notices"]


async def test_a_crm_refusing_a_call_gives_one_notice_at_each_listed_sink(
    tmp_path, write_rules, crm: Receiver, receiver: Receiver, slack: FakeSlack
) -> None:
    path = write_rules(rules(crm.url("/crm"), receiver.url("/notices"), slack))
    event = fresh_event(status="FAILED", fromNumber=CALLER)
    async with running_service(path, tmp_path / "r.db", public_url=PUBLIC_URL) as client:
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: notices_at(receiver) and slack.posted)
        store, *_ = parts(client)

        async def settled() -> bool:
            found = await store.list_deliveries()
            return len(found) == 3 and all(d.status != "pending" for d in found)

        await wait_for(settled)
        notices = await store.list_deliveries()
        [dead] = [d for d in notices if d.sink == "crm"]
    assert dead.status == "dead" and len(crm.received) == 1
    [notice] = notices_at(receiver)
    assert list(notice) == [
        "notice", "sink", "rule", "delivery_id", "event_id", "error", "call", "link",
    ]  # fmt: skip
    assert notice["notice"] == "delivery_dead"
    assert (notice["sink"], notice["rule"]) == ("crm", "to-crm")
    assert (notice["delivery_id"], notice["event_id"]) == (dead.id, event["id"])
    assert "400" in notice["error"]
    assert notice["link"] == f"{PUBLIC_URL}/ui/deliveries/{dead.id}"
    assert notice["call"]["id"] == event["id"] and notice["call"]["status"] == "FAILED"
    assert CALLER not in receiver.received[0].body.decode()
    assert notice["call"]["fromNumber"] != CALLER and notice["call"]["fromNumber"].endswith("0142")
    [message] = slack.posted
    assert "Delivery dead: crm (rule to-crm)" in message["text"]
    shown = str(message["blocks"])
    assert "400" in shown and dead.id in shown and CALLER not in shown
    assert f"{PUBLIC_URL}/ui/deliveries/{dead.id}" in shown
    by_sink = {d.sink: d for d in notices}
    assert by_sink["alerts-http"].notice_of == dead.id
    assert by_sink["ops-slack"].notice_of == dead.id
    assert {by_sink[s].status for s in ("alerts-http", "ops-slack")} == {"delivered"}


async def test_a_notice_that_goes_dead_is_not_reported_again(
    tmp_path, write_rules, crm: Receiver, slack: FakeSlack
) -> None:
    # The notice sink refuses everything too, and lists a sink of its own in on_dead.
    path = write_rules(
        rules(crm.url("/crm"), crm.url("/notices"), slack, notice_on_dead="on_dead: [ops-slack]")
    )
    async with running_service(path, tmp_path / "r.db") as client:
        assert (await post_event(client, fresh_event(status="FAILED"))).status == 200
        store, *_ = parts(client)

        async def settled() -> bool:
            found = await store.list_deliveries()
            return len(found) == 3 and all(d.status != "pending" for d in found)

        await wait_for(settled)
        found = {d.sink: d for d in await store.list_deliveries()}
    assert found["crm"].status == "dead"
    assert found["alerts-http"].status == "dead" and found["alerts-http"].notice_of is not None
    # ops-slack got the crm's notice only, none of the dead notice.
    assert found["ops-slack"].notice_of == found["crm"].id
    assert len(slack.posted) == 1 and "crm" in slack.posted[0]["text"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_the_notice_is_written_with_the_dead_mark_and_survives_a_restart(
    tmp_path, write_rules, crm: Receiver, receiver: Receiver, slack: FakeSlack
) -> None:
    database = tmp_path / "r.db"
    nowhere = f"http://127.0.0.1:{closed_port()}/notices"
    event = fresh_event(status="FAILED")
    path = write_rules(rules(crm.url("/crm"), nowhere, slack))
    async with running_service(path, database) as client:
        assert (await post_event(client, event)).status == 200
        store, *_ = parts(client)

        async def crm_dead() -> bool:
            found = {d.sink: d for d in await store.list_deliveries()}
            return "crm" in found and found["crm"].status == "dead"

        await wait_for(crm_dead)
    # The file alone holds the notice, still to send.
    opened = SQLiteStore(database)
    await opened.open()
    try:
        found = {d.sink: d for d in await opened.list_deliveries()}
    finally:
        await opened.close()
    assert found["alerts-http"].notice_of == found["crm"].id
    assert found["alerts-http"].status in ("pending", "dead")
    if found["alerts-http"].status == "dead":
        pytest.fail("the notice ran out of attempts before the restart")
    write_rules(rules(crm.url("/crm"), receiver.url("/notices"), slack))
    async with running_service(path, database) as client:
        await wait_for(lambda: notices_at(receiver))
    [notice] = notices_at(receiver)
    assert notice["delivery_id"] == found["crm"].id and notice["link"] is None


async def test_the_console_links_a_notice_to_the_dead_delivery(
    tmp_path, write_rules, crm: Receiver, receiver: Receiver, slack: FakeSlack
) -> None:
    from tests.integration.test_console import sign_in

    path = write_rules(rules(crm.url("/crm"), receiver.url("/notices"), slack))
    async with running_service(path, tmp_path / "r.db") as client:
        assert (await post_event(client, fresh_event(status="FAILED"))).status == 200
        await wait_for(lambda: notices_at(receiver))
        store, *_ = parts(client)
        found = {d.sink: d for d in await store.list_deliveries()}
        await sign_in(client)
        page = await (await client.get(f"/ui/deliveries/{found['alerts-http'].id}")).text()
        listing = await (await client.get("/ui/deliveries")).text()
        dead_page = await client.get(f"/ui/deliveries/{found['crm'].id}")
        assert dead_page.status == 200
    dead_id = found["crm"].id
    assert f'href="/ui/deliveries/{dead_id}" class="notice-of"' in page
    assert "notice of a dead delivery" in page
    assert f'href="/ui/deliveries/{dead_id}" title="a notice of the dead delivery' in listing


class BarrierCrm:
    """A CRM that answers nobody until `expected` requests are in, then refuses them all
    (HTTP 400, permanent): that many deliveries go dead at once, as in an outage."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.all_in = asyncio.Event()
        self.server: TestServer | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived += 1
        if self.arrived >= self.expected:
            self.all_in.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_in.wait(), 30)
        return web.Response(status=400, text="contact API down")

    async def start(self) -> BarrierCrm:
        app = web.Application()
        app.router.add_post("/crm", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/crm"))


BURST = 20
# Longer than the default 2 s, so that the twenty deaths (twenty store writes) land in
# one window even on a loaded machine.
BURST_ENGINE = replace(fast_engine(), notice_window=4.0)


@pytest.fixture
async def outage() -> AsyncIterator[BarrierCrm]:
    crm = await BarrierCrm(BURST).start()
    yield crm
    assert crm.server is not None
    await crm.server.close()


async def kill_twenty(client) -> list[str]:
    """Twenty FAILED calls whose CRM deliveries all go dead together: their ids."""
    store, *_ = parts(client)
    for _ in range(BURST):
        assert (await post_event(client, fresh_event(status="FAILED"))).status == 200

    async def all_dead() -> list[str]:
        found = [d for d in await store.list_deliveries() if d.sink == "crm"]
        dead = [d.id for d in found if d.status == "dead"]
        return dead if len(dead) == BURST else []

    await wait_for(all_dead, limit=30)
    return await all_dead()


def grouped_ids(documents: list[dict[str, Any]]) -> list[str]:
    """The dead deliveries the notices received tell of, grouped or single."""
    ids = []
    for document in documents:
        if document["notice"] == "deliveries_dead":
            assert document["count"] == len(document["notices"])
            ids.extend(one["delivery_id"] for one in document["notices"])
        else:
            ids.append(document["delivery_id"])
    return ids


async def test_twenty_deliveries_dying_at_once_give_one_grouped_notice_per_sink(
    tmp_path, write_rules, outage: BarrierCrm, receiver: Receiver, slack: FakeSlack
) -> None:
    # The notices of one burst are held `notice_window` (4 s here) after each is written;
    # the twenty die within a moment of each other (the CRM answers them together), so
    # the notice lanes find all twenty pending at their first claim: one message each.
    path = write_rules(rules(outage.url(), receiver.url("/notices"), slack, crm_concurrency=BURST))
    async with running_service(
        path, tmp_path / "r.db", public_url=PUBLIC_URL, engine=BURST_ENGINE
    ) as client:
        dead = await kill_twenty(client)
        store, *_ = parts(client)

        async def notices_settled() -> bool:
            found = [d for d in await store.list_deliveries() if d.notice_of is not None]
            return len(found) == 2 * BURST and all(d.status == "delivered" for d in found)

        await wait_for(notices_settled, limit=30)
        notices = [d for d in await store.list_deliveries() if d.notice_of is not None]
    [document] = notices_at(receiver)
    assert (document["notice"], document["count"]) == ("deliveries_dead", BURST)
    assert sorted(grouped_ids([document])) == sorted(dead)
    first = document["notices"][0]
    assert list(first) == [
        "notice", "sink", "rule", "delivery_id", "event_id", "error", "call", "link",
    ]  # fmt: skip
    assert first["link"] == f"{PUBLIC_URL}/ui/deliveries/{first['delivery_id']}"
    assert CALLER not in receiver.received[0].body.decode()
    [message] = slack.posted
    assert message["text"] == f"{BURST} deliveries went dead"
    shown = str(message["blocks"])
    assert all(f"{PUBLIC_URL}/ui/deliveries/{dead_id}" in shown for dead_id in dead)
    assert "contact API down" in shown
    # Each notice is still its own delivery, sent once (one attempt each).
    assert sorted(d.notice_of for d in notices if d.sink == "alerts-http") == sorted(dead)
    assert all(d.attempts == 1 for d in notices)


async def test_notices_pending_at_a_restart_all_go_out_after_it(
    tmp_path, write_rules, outage: BarrierCrm, receiver: Receiver, slack: FakeSlack
) -> None:
    database = tmp_path / "r.db"
    nowhere = f"http://127.0.0.1:{closed_port()}"
    many_tries = "{max_attempts: 100, initial_delay: 50ms, max_delay: 100ms}"
    path = write_rules(
        rules(
            outage.url(),
            f"{nowhere}/notices",
            nowhere,
            crm_concurrency=BURST,
            notice_retry=many_tries,
        )
    )
    async with running_service(path, database, engine=BURST_ENGINE) as client:
        dead = await kill_twenty(client)
    opened = SQLiteStore(database)
    await opened.open()
    try:
        pending = [d for d in await opened.list_deliveries() if d.notice_of is not None]
    finally:
        await opened.close()
    assert len(pending) == 2 * BURST and all(d.status == "pending" for d in pending)
    write_rules(
        rules(
            outage.url(),
            receiver.url("/notices"),
            slack,
            crm_concurrency=BURST,
            notice_retry=many_tries,
        )
    )
    async with running_service(path, database, engine=BURST_ENGINE) as client:
        await wait_for(lambda: notices_at(receiver) and slack.posted, limit=30)
        store, *_ = parts(client)

        async def notices_settled() -> bool:
            found = [d for d in await store.list_deliveries() if d.notice_of is not None]
            return all(d.status == "delivered" for d in found)

        await wait_for(notices_settled, limit=30)
    # None lost, none twice; all pending at the start, so one message at each sink.
    assert sorted(grouped_ids(notices_at(receiver))) == sorted(dead)
    assert len(notices_at(receiver)) == 1 and len(slack.posted) == 1
    shown = str(slack.posted[0]["blocks"])
    assert all(dead_id in shown for dead_id in dead)


class GatedReceiver:
    """Notices receiver whose first request waits until `release` is set: a notice
    message in flight for as long as the test wants."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived: list[dict[str, Any]] = []
        self.server: TestServer | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrived.append(await request.json())
        if len(self.arrived) == 1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), 30)
        return web.Response(status=200, text="ok")

    async def start(self) -> GatedReceiver:
        app = web.Application()
        app.router.add_post("/notices", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/notices"))


async def test_a_notice_due_while_a_message_is_in_flight_waits_for_the_next_send(
    tmp_path, write_rules, crm: Receiver, slack: FakeSlack
) -> None:
    gate = await GatedReceiver().start()
    try:
        # (held at the gate however long a loaded machine takes: no timeout, no retry)
        path = write_rules(rules(crm.url("/crm"), gate.url(), slack, notice_timeout="5m"))
        async with running_service(path, tmp_path / "r.db") as client:
            store, *_ = parts(client)
            assert (await post_event(client, fresh_event(status="FAILED"))).status == 200
            await wait_for(lambda: gate.arrived)  # the first notice, held at the receiver
            assert (await post_event(client, fresh_event(status="FAILED"))).status == 200

            in_flight = gate.arrived[0]["delivery_id"]  # the dead delivery it tells of

            async def second_notice() -> list:
                # The notice held at the gate is pending with no attempt too: not that one.
                return [
                    d
                    for d in await store.list_deliveries()
                    if d.sink == "alerts-http"
                    and d.status == "pending"
                    and d.attempts == 0
                    and d.notice_of != in_flight
                ]

            await wait_for(second_notice)
            [waiting] = await second_notice()
            # Let it come due, and the lane look again (a claim every 0.2 s at most).
            await asyncio.sleep(max((waiting.next_attempt_at or 0) - time.time(), 0) + 0.6)
            assert len(gate.arrived) == 1  # not sent beside the one in flight
            gate.release.set()
            await wait_for(lambda: len(gate.arrived) == 2)

            async def delivered() -> bool:
                found = [d for d in await store.list_deliveries() if d.sink == "alerts-http"]
                return len(found) == 2 and all(d.status == "delivered" for d in found)

            await wait_for(delivered)
        first, second = gate.arrived
        assert first["notice"] == second["notice"] == "delivery_dead"  # each a single one
        assert first["delivery_id"] != second["delivery_id"]
    finally:
        assert gate.server is not None
        await gate.server.close()


async def test_a_grouped_notice_that_dies_is_not_reported_again(
    tmp_path, write_rules, outage: BarrierCrm, crm: Receiver, slack: FakeSlack
) -> None:
    # The notice sink refuses everything too (HTTP 400), and lists ops-slack in on_dead.
    path = write_rules(
        rules(
            outage.url(),
            crm.url("/notices"),
            slack,
            notice_on_dead="on_dead: [ops-slack]",
            crm_concurrency=BURST,
        )
    )
    async with running_service(path, tmp_path / "r.db", engine=BURST_ENGINE) as client:
        dead = await kill_twenty(client)
        store, *_ = parts(client)

        async def settled() -> bool:
            found = await store.list_deliveries()
            return len(found) == 3 * BURST and all(d.status != "pending" for d in found)

        await wait_for(settled, limit=30)
        found = await store.list_deliveries()
    notices = [d for d in found if d.sink == "alerts-http"]
    assert len(notices) == BURST and all(d.status == "dead" for d in notices)
    assert len(crm.received) == 1  # the twenty in one request, refused once: dead together
    # ops-slack told of the crm deliveries only, in one message, none of the dead notices.
    assert sorted(d.notice_of for d in found if d.sink == "ops-slack") == sorted(dead)
    [message] = slack.posted
    assert message["text"] == f"{BURST} deliveries went dead"
    assert not any(notice.id in str(message["blocks"]) for notice in notices)
