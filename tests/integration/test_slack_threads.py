"""Slack threads (`thread_by`, `thread_for`: DESIGN.md section 16) against the fake Slack
on a real socket, with the thread parents in real stores (SQLite file, memory,
PostgreSQL) and, end to end, in the real service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from router.engine import StoreThreads
from router.engine.requests import build_and_transmit
from sinks.base import DeliveryRequest, Digest, SinkResources
from sinks.registry import build_sink
from sinks.slack.sink import SlackSink, SlackSinkConfig
from tests.conftest import fresh_event
from tests.integration.conftest import StoreFactory
from tests.service import post_event, running_service, wait_for
from tests.slack_fake import CHANNEL_ID, FakeSlack

TRUNK = "sip-trunk-7"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.close()


class FakeClock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def threaded_sink(slack: FakeSlack, threads: StoreThreads, **options: Any) -> SlackSink:
    config = SlackSinkConfig(
        type="slack",
        token="xoxb-test",
        channel="#ops-alerts",
        api_url=slack.base + "/api/",
        thread_by=("sipTrunkId",),
        **options,
    )
    sink = build_sink("ops-slack", config, SinkResources(threads=threads))
    assert isinstance(sink, SlackSink)
    return sink


def call_alert(trunk: str = TRUNK, **changes: Any) -> DeliveryRequest:
    event = fresh_event(status="FAILED", sipTrunkId=trunk, **changes)
    return DeliveryRequest(uuid.uuid4().hex, event["id"], "ops-slack", "failed-calls", event)


def counted(message: dict[str, Any]) -> str:
    """The parent's "+N more in thread" line (its last context block)."""
    return message["blocks"][-1]["elements"][0]["text"]


async def test_three_alerts_of_a_trunk_share_one_thread_and_the_parent_counts_them(
    store_factory: StoreFactory, slack: FakeSlack
) -> None:
    threads = StoreThreads(await store_factory(), FakeClock())
    sink = threaded_sink(slack, threads)
    for _ in range(3):
        await build_and_transmit(sink, call_alert())
    [parent] = slack.parents
    assert [reply["thread_ts"] for reply in slack.replies[parent]] == [parent, parent]
    assert [update["ts"] for update in slack.updates] == [parent, parent]
    assert {update["channel"] for update in slack.updates} == {CHANNEL_ID}
    assert counted(slack.updates[0]) == "+1 more in thread"
    assert counted(slack.messages[parent]) == "+2 more in thread"
    # Another trunk starts a thread of its own.
    await build_and_transmit(sink, call_alert("sip-trunk-9"))
    assert len(slack.parents) == 2


async def test_racing_alerts_of_one_key_make_one_parent(
    store_factory: StoreFactory, slack: FakeSlack
) -> None:
    sink = threaded_sink(slack, StoreThreads(await store_factory(), FakeClock()))
    await asyncio.gather(*(build_and_transmit(sink, call_alert()) for _ in range(5)))
    [parent] = slack.parents
    assert len(slack.replies[parent]) == 4
    assert counted(slack.messages[parent]) == "+4 more in thread"


async def test_a_thread_expires_after_thread_for(
    store_factory: StoreFactory, slack: FakeSlack
) -> None:
    clock = FakeClock()
    sink = threaded_sink(slack, StoreThreads(await store_factory(), clock), thread_for=600)
    await build_and_transmit(sink, call_alert())
    clock.now += 599
    await build_and_transmit(sink, call_alert())
    assert len(slack.parents) == 1
    clock.now += 2  # 601 s after the first: a new thread
    await build_and_transmit(sink, call_alert())
    first, second = slack.parents
    assert len(slack.replies[first]) == 1
    assert "thread_ts" not in slack.messages[second]
    await build_and_transmit(sink, call_alert())
    assert len(slack.replies[second]) == 1


async def test_a_deleted_parent_starts_a_new_thread_and_the_alert_is_not_lost(
    store_factory: StoreFactory, slack: FakeSlack
) -> None:
    sink = threaded_sink(slack, StoreThreads(await store_factory(), FakeClock()))
    await build_and_transmit(sink, call_alert())
    [first] = slack.parents
    slack.delete(first)
    lost = call_alert()
    result = await build_and_transmit(sink, lost)
    assert result.detail is not None and result.detail.startswith("ts=")
    # The reply was refused (thread_not_found), then the alert posted as a new parent.
    assert [body.get("thread_ts") for _, body in slack.calls] == [None, first, None]
    [second] = slack.parents
    assert slack.messages[second]["text"] == slack.posted[-1]["text"]
    await build_and_transmit(sink, call_alert())
    assert [reply["thread_ts"] for reply in slack.replies[second]] == [second]


async def test_a_parent_gone_when_its_count_is_updated_ends_the_thread(
    store_factory: StoreFactory, slack: FakeSlack
) -> None:
    slack.replies_to_deleted = True
    sink = threaded_sink(slack, StoreThreads(await store_factory(), FakeClock()))
    await build_and_transmit(sink, call_alert())
    [first] = slack.parents
    slack.delete(first)
    await build_and_transmit(sink, call_alert())  # a reply; the update finds no parent
    assert [method for method, _ in slack.calls][-2:] == ["chat.postMessage", "chat.update"]
    assert slack.updates == [] and len(slack.replies[first]) == 1
    await build_and_transmit(sink, call_alert())  # the thread was ended: a new parent
    [second] = slack.parents
    assert second != first and "thread_ts" not in slack.messages[second]


def test_preview_shows_what_slack_gets() -> None:
    config = SlackSinkConfig(
        type="slack", token="xoxb-t", channel="#ops", thread_by=("sipTrunkId",)
    )
    sink = build_sink("ops-slack", config, SinkResources())
    assert "revring_thread_key" not in sink.preview(call_alert())


async def test_a_digest_of_the_trunk_posts_into_its_thread(
    store_factory: StoreFactory, slack: FakeSlack
) -> None:
    sink = threaded_sink(slack, StoreThreads(await store_factory(), FakeClock()))
    await build_and_transmit(sink, call_alert())
    [parent] = slack.parents
    calls = [fresh_event(status="FAILED", sipTrunkId=TRUNK) for _ in range(3)]
    digest = Digest({"sipTrunkId": TRUNK}, "2026-12-07T10:00:00+00:00", "2026-12-07T10:02:00+00:00",
                    calls)  # fmt: skip
    request = DeliveryRequest("digest-1", calls[0]["id"], "ops-slack", "trunk-digest", calls[0],
                              digest=digest)  # fmt: skip
    await build_and_transmit(sink, request)
    [reply] = slack.replies[parent]
    assert "3" in reply["text"]
    assert counted(slack.messages[parent]) == "+1 more in thread"


async def test_without_thread_by_every_alert_stands_alone(
    store_factory: StoreFactory, slack: FakeSlack
) -> None:
    config = SlackSinkConfig(
        type="slack", token="xoxb-test", channel="#ops-alerts", api_url=slack.base + "/api/"
    )
    threads = StoreThreads(await store_factory(), FakeClock())
    sink = build_sink("ops-slack", config, SinkResources(threads=threads))
    for _ in range(2):
        await build_and_transmit(sink, call_alert())
    assert len(slack.parents) == 2 and slack.updates == []


def service_rules(slack: FakeSlack) -> str:
    return f"""
version: 1
sinks:
  ops-slack:
    type: slack
    token: xoxb-test
    channel: "#ops-alerts"
    api_url: "{slack.base}/api/"
    rate_limit: 100/s
    thread_by: [sipTrunkId]
    thread_for: 1h
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [ops-slack]
"""


async def test_a_storm_on_one_trunk_lands_in_one_thread_through_the_service(
    tmp_path, write_rules, slack: FakeSlack
) -> None:
    async with running_service(write_rules(service_rules(slack)), tmp_path / "r.db") as client:
        for _ in range(3):
            event = fresh_event(status="FAILED", sipTrunkId=TRUNK)
            assert (await post_event(client, event)).status == 200
        await wait_for(lambda: len(slack.posted) == 3 and len(slack.updates) == 2)
    [parent] = slack.parents
    assert len(slack.replies[parent]) == 2
    assert counted(slack.messages[parent]) == "+2 more in thread"
    # The parent is kept in the store: after a restart, the trunk's next alert replies.
    async with running_service(write_rules(service_rules(slack)), tmp_path / "r.db") as client:
        event = fresh_event(status="FAILED", sipTrunkId=TRUNK)
        assert (await post_event(client, event)).status == 200
        await wait_for(lambda: len(slack.posted) == 4)
    assert slack.parents == [parent] and len(slack.replies[parent]) == 3
