"""Durable delivery end to end: real sockets, a real SQLite file, a local HTTP receiver."""

from __future__ import annotations

import itertools
import time

from router.core.pacing import PauseSettings
from router.engine.delivery import EngineSettings
from tests.conftest import fresh_event
from tests.receivers import Receiver
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for

RULES = """
version: 1
defaults:
  retry: {max_attempts: %(attempts)s, initial_delay: 100ms, max_delay: 300ms, max_age: 1h}
sinks:
  crm:
    type: http
    url: "%(url)s"
    concurrency: %(concurrency)s
%(extra)s
rules:
  - name: all-calls
    to: [crm]
"""


def rules_text(url: str, *, attempts: int = 20, concurrency: int = 4, extra: str = "") -> str:
    return RULES % {"url": url, "attempts": attempts, "concurrency": concurrency, "extra": extra}


def engine(**pause: float) -> EngineSettings:
    return EngineSettings(
        lease_seconds=5.0,
        idle_poll=0.2,
        unconfigured_check=0.2,
        shutdown_grace=2.0,
        pause=PauseSettings(**{"failures_to_pause": 1000, **pause}),
    )


async def test_a_sink_down_for_a_while_gets_each_delivery_exactly_once(
    tmp_path, write_rules, receiver
):
    receiver.answer = lambda request, n: 503 if n <= 12 else 200
    rules = write_rules(rules_text(receiver.url()))
    events = [fresh_event() for _ in range(5)]
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        for event in events:
            assert (await post_event(client, event)).status == 200
        await wait_for(lambda: len(receiver.delivered_ids()) >= 5)
        store, *_ = parts(client)
        await wait_for(lambda: _all_delivered(store))
    assert sorted(receiver.delivered_ids()) == sorted(e["id"] for e in events)
    assert any(r.status == 503 for r in receiver.received)


async def _all_delivered(store) -> bool:
    views = await store.list_deliveries()
    return bool(views) and all(v.status == "delivered" for v in views)


async def test_retry_after_is_not_retried_sooner(tmp_path, write_rules, receiver):
    receiver.answer = lambda request, n: (429, {"Retry-After": "2"}) if n == 1 else 200
    rules = write_rules(rules_text(receiver.url()))
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        await post_event(client, fresh_event())
        await wait_for(lambda: len(receiver.delivered_ids()) == 1)
    first, second = receiver.received
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 2.0


async def test_a_permanent_4xx_goes_dead_after_one_attempt_and_replay_delivers_it(
    tmp_path, write_rules, receiver
):
    receiver.answer = lambda request, n: 404 if n == 1 else 200
    rules = write_rules(rules_text(receiver.url()))
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        event = fresh_event()
        await post_event(client, event)
        store, *_ = parts(client)
        await wait_for(lambda: _has_status(store, "dead"))
        [dead] = await store.list_deliveries("dead")
        assert dead.attempts == 1
        assert "404" in (dead.last_error or "")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        listed = await (await client.get("/admin/deliveries?status=dead", headers=auth)).json()
        assert [d["id"] for d in listed] == [dead.id]
        replayed = await client.post(f"/admin/deliveries/{dead.id}/replay", headers=auth)
        assert replayed.status == 200
        await wait_for(lambda: _has_status(store, "delivered"))
        [delivered] = await store.list_deliveries("delivered")
        assert delivered.attempts == 2
    assert receiver.delivered_ids() == [event["id"]]


async def _has_status(store, status: str) -> bool:
    return bool(await store.list_deliveries(status))


async def _count_delivered(store, count: int) -> bool:
    return len(await store.list_deliveries("delivered", limit=count)) >= count


async def test_idempotency_key_is_stable_across_retries(tmp_path, write_rules, receiver):
    receiver.answer = lambda request, n: 500 if n <= 2 else 200
    rules = write_rules(rules_text(receiver.url()))
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        await post_event(client, fresh_event())
        await wait_for(lambda: len(receiver.delivered_ids()) == 1)
    keys = {r.headers.get("Idempotency-Key") for r in receiver.received}
    assert len(receiver.received) == 3
    assert len(keys) == 1 and None not in keys


async def test_rate_limit_spaces_deliveries_in_order(tmp_path, write_rules, receiver):
    rules = write_rules(rules_text(receiver.url(), concurrency=1, extra="    rate_limit: 5/s"))
    events = [fresh_event() for _ in range(20)]
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        for event in events:
            await post_event(client, event)
        await wait_for(lambda: len(receiver.delivered_ids()) == 20, limit=30)
        store, *_ = parts(client)
        # The last attempt is recorded just after its answer arrived.
        await wait_for(lambda: _count_delivered(store, 20))
        views = await store.list_deliveries(limit=100)
        starts = sorted([(await store.list_attempts(v.id))[0].started_at for v in views])
    assert receiver.delivered_ids() == [e["id"] for e in events]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # 5/s: the recorded attempt start times are at least 200 ms apart
    assert min(gaps) >= 0.199, [round(g, 3) for g in gaps]
    arrivals = [r.at for r in receiver.received]
    assert arrivals[-1] - arrivals[0] >= 19 * 0.19


async def test_a_failing_sink_does_not_delay_another(tmp_path, write_rules):
    stuck = await Receiver(delay=5.0).start()  # answers only after 5 s: a hanging CRM
    healthy = await Receiver().start()
    text = f"""
version: 1
sinks:
  stuck-crm: {{type: http, url: "{stuck.url()}", concurrency: 1, timeout: 30s}}
  alerts: {{type: http, url: "{healthy.url()}"}}
rules:
  - name: all
    to: [stuck-crm, alerts]
"""
    try:
        async with running_service(write_rules(text), tmp_path / "r.db", engine=engine()) as client:
            events = [fresh_event() for _ in range(10)]
            for event in events:
                await post_event(client, event)
            await wait_for(lambda: len(healthy.delivered_ids()) == 10)
            # every alert arrived while the stuck sink had not answered even its first request
            assert stuck.received == []
    finally:
        await stuck.close()
        await healthy.close()


def paused(metrics) -> float | None:
    return metrics.registry.get_sample_value("revring_router_sink_paused", {"sink": "crm"})


async def test_a_paused_sink_resumes_by_itself_when_its_endpoint_recovers(
    tmp_path, write_rules, receiver
):
    healthy = {"up": False}
    receiver.answer = lambda request, n: 200 if healthy["up"] else 503
    rules = write_rules(rules_text(receiver.url(), attempts=50))
    settings = engine(failures_to_pause=3, first_pause=0.3, max_pause=1.0)
    async with running_service(rules, tmp_path / "r.db", engine=settings) as client:
        events = [fresh_event() for _ in range(5)]
        for event in events:
            await post_event(client, event)
        *_, metrics = parts(client)
        await wait_for(lambda: paused(metrics) == 1)
        healthy["up"] = True
        await wait_for(lambda: len(set(receiver.delivered_ids())) == 5)
        await wait_for(lambda: paused(metrics) == 0)
    assert sorted(set(receiver.delivered_ids())) == sorted(e["id"] for e in events)


async def test_unconfigured_sink_waits_without_attempts_until_a_reload_sets_it(
    tmp_path, write_rules, receiver
):
    path = write_rules(rules_text(""))
    async with running_service(path, tmp_path / "r.db", engine=engine()) as client:
        event = fresh_event()
        assert (await post_event(client, event)).status == 200
        store, *_ = parts(client)
        [waiting] = await store.list_deliveries()
        assert waiting.status == "pending" and waiting.attempts == 0
        path.write_text(rules_text(receiver.url()))
        reloaded = await client.post(
            "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert reloaded.status == 200
        await wait_for(lambda: receiver.delivered_ids() == [event["id"]])


async def test_a_removed_sink_sends_its_pending_deliveries_dead(tmp_path, write_rules):
    path = write_rules(rules_text(""))
    async with running_service(path, tmp_path / "r.db", engine=engine()) as client:
        await post_event(client, fresh_event())
        path.write_text("version: 1\nsinks: {c: {type: log, path: /dev/null}}\nrules: []\n")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert (await client.post("/admin/reload", headers=auth)).status == 200
        store, *_ = parts(client)
        await wait_for(lambda: _has_status(store, "dead"))
        [dead] = await store.list_deliveries("dead")
        assert "removed" in (dead.last_error or "")


async def test_a_fresh_delivery_goes_out_without_a_claim_when_its_sink_has_room(
    tmp_path, write_rules, receiver
):
    rules = write_rules(rules_text(receiver.url()))
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        store, engine_, *_ = parts(client)
        claims = 0
        real_claim = store.claim

        async def counting_claim(*args, **kwargs):
            nonlocal claims
            found = await real_claim(*args, **kwargs)
            claims += len(found)
            return found

        store.claim = counting_claim
        await wait_for(lambda: "crm" in engine_.lanes)  # lanes start with the first supervision
        event = fresh_event()
        await post_event(client, event)
        await wait_for(lambda: receiver.delivered_ids() == [event["id"]])
        await wait_for(lambda: _all_delivered(store))
        assert claims == 0  # sent straight after the commit, under the lease it was written with
        assert engine_.lanes["crm"].sending == 0


async def test_a_serial_sink_never_skips_the_queue(tmp_path, write_rules, receiver):
    rules = write_rules(rules_text(receiver.url(), concurrency=1))
    async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
        _, engine_, *_ = parts(client)
        await wait_for(lambda: "crm" in engine_.lanes)
        assert engine_.plan([("crm", "r", None)], time.time())[0].lease_owner is None


async def test_shutdown_gives_back_a_send_still_running_after_the_grace_period(
    tmp_path, write_rules
):
    from router.store.sqlite import SQLiteStore

    hanging = await Receiver(delay=10.0).start()
    try:
        rules = write_rules(rules_text(hanging.url()))
        async with running_service(rules, tmp_path / "r.db", engine=engine()) as client:
            await post_event(client, fresh_event())
            await wait_for(lambda: len(hanging._counts) == 1)  # the send is in flight
        # the service stopped after its 2 s grace: the delivery is back in the queue,
        # unleased and with no attempt spent
        store = SQLiteStore(tmp_path / "r.db", owns_leases=False)
        await store.open()
        try:
            [view] = await store.list_deliveries()
            assert (view.status, view.attempts) == ("pending", 0)
            assert len(await store.claim("crm", 10, "next-start", 30.0, time.time())) == 1
        finally:
            await store.close()
    finally:
        await hanging.close()


async def test_a_group_key_nested_to_the_body_limit_neither_fails_nor_leaks_a_send_slot(
    tmp_path, write_rules, receiver
):
    text = (
        rules_text(receiver.url())
        .replace(
            "rules:\n",
            "rules:\n  - name: grouped\n    to: [log]\n"
            "    group: {by: [variables.x], window: 1h}\n",
        )
        .replace("sinks:\n", f'sinks:\n  log: {{type: log, path: "{tmp_path / "log.jsonl"}"}}\n')
    )
    async with running_service(write_rules(text), tmp_path / "r.db", engine=engine()) as client:
        _, engine_, *_ = parts(client)
        await wait_for(lambda: "crm" in engine_.lanes)
        deep: object = 1
        for _ in range(62):  # the body nests 64 levels: as deep as a call may (DESIGN §5)
            deep = {"x": deep}
        events = [fresh_event(variables={"x": deep}) for _ in range(6)]
        for event in events:
            response = await post_event(client, event)
            assert response.status == 200, await response.text()
        await wait_for(lambda: sorted(receiver.delivered_ids()) == sorted(e["id"] for e in events))
        await wait_for(lambda: engine_.lanes["crm"].sending == 0)


async def test_renaming_a_sink_spares_a_delivery_in_flight(tmp_path, write_rules):
    slow = await Receiver(delay=1.5).start()
    try:
        path = write_rules(rules_text(slow.url()))
        async with running_service(path, tmp_path / "r.db", engine=engine()) as client:
            store, *_ = parts(client)
            await post_event(client, fresh_event())
            await wait_for(lambda: len(slow._counts) == 1)  # the send is in flight
            path.write_text(rules_text(slow.url()).replace("crm", "crm-v2"))
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            assert (await client.post("/admin/reload", headers=auth)).status == 200
            await wait_for(lambda: _has_status(store, "delivered"))
            assert await store.list_deliveries("dead") == []
    finally:
        await slow.close()


async def test_a_huge_retry_after_holds_the_sink_no_longer_than_the_longest_pause(
    tmp_path, write_rules, receiver
):
    receiver.answer = lambda request, n: (429, {"Retry-After": "3000"}) if n == 1 else 200
    rules = write_rules(rules_text(receiver.url()))
    settings = engine(max_pause=0.5)
    async with running_service(rules, tmp_path / "r.db", engine=settings) as client:
        store, *_ = parts(client)
        first, second = fresh_event(), fresh_event()
        await post_event(client, first)
        await wait_for(lambda: len(receiver.received) == 1)
        await post_event(client, second)
        await wait_for(lambda: receiver.delivered_ids() == [second["id"]])
        # The receiver has the second call before its delivery is recorded as delivered.
        await wait_for(lambda: _has_status(store, "delivered"))
        [waiting] = await store.list_deliveries("pending")
        assert waiting.event_id == first["id"]
        assert waiting.next_attempt_at >= time.time() + 2900  # the delivery honours it


async def test_a_delivery_in_flight_cannot_be_replayed(tmp_path, write_rules):
    slow = await Receiver(delay=1.5).start()
    try:
        path = write_rules(rules_text(slow.url()))
        async with running_service(path, tmp_path / "r.db", engine=engine()) as client:
            store, *_ = parts(client)
            await post_event(client, fresh_event())
            await wait_for(lambda: len(slow._counts) == 1)
            [view] = await store.list_deliveries()
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            busy = await client.post(f"/admin/deliveries/{view.id}/replay", headers=auth)
            assert busy.status == 409
            await wait_for(lambda: _has_status(store, "delivered"))
            again = await client.post(f"/admin/deliveries/{view.id}/replay", headers=auth)
            assert again.status == 200
            await wait_for(lambda: len(slow.delivered_ids()) == 2)
    finally:
        await slow.close()
