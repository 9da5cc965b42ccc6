"""Forgetting a caller in the store (`Erasures.forget`, DESIGN.md section 15): their calls
go with every delivery, attempt, digest membership and acknowledgement; other rows that
mention the number in any common writing show `[erased]`; numbers that only look alike
stay; a dry run counts the same and changes nothing. On every store kind in
`conftest.STORE_KINDS`; times are fixed numbers."""

from __future__ import annotations

import json
from typing import Any

from router.operators import ForgetRequest
from router.operators.forget import SALT_SETTING, erasure_of
from router.store import (
    Acknowledgement,
    AttemptRecord,
    CallFilters,
    ErasureCounts,
    Exchange,
    GroupJoin,
    IngestRecord,
    NewDelivery,
    ReceivedResponse,
    SentRequest,
    SilenceRecord,
    Store,
    searchable_text,
)

NOW = 1_700_000_000.0
CALLER = "+14155550142"
AGENT_LINE = "+14155550199"
SOMEONE = "+442071838750"
LOOK_ALIKE = (
    "Ticket 4155550143 opened 2026-11-20 15:02; call +1 415-555-0143 or 415 555 0124;"
    " order 0014155550142777"
)


def call(
    event_id: str,
    at: float,
    *,
    from_number: str = CALLER,
    to_number: str = AGENT_LINE,
    summary: str | None = None,
    variables: dict[str, Any] | None = None,
    deliveries: tuple[NewDelivery, ...] = (),
) -> IngestRecord:
    body = {
        "id": event_id,
        "fromNumber": from_number,
        "toNumber": to_number,
        "summary": summary,
        "transcript": [{"role": "user", "content": summary or ""}],
        "variables": variables or {},
    }
    return IngestRecord(
        event_id,
        json.dumps(body).encode(),
        at,
        deliveries,
        status="COMPLETED",
        from_number=from_number,
        to_number=to_number,
        search_text=searchable_text(body),
    )


def single(delivery_id: str, sink: str = "ops") -> NewDelivery:
    return NewDelivery(delivery_id, sink, "rule-a")


def grouped(delivery_id: str) -> NewDelivery:
    return NewDelivery(delivery_id, "digest-sink", "grouped", GroupJoin('["x"]', 600.0))


async def attempt(store: Store, sink: str, outcome: str, error: str | None = None) -> str:
    [claimed] = await store.claim(sink, 1, "w1", 30.0, NOW + 100)
    record = AttemptRecord(1, NOW + 100, 0.1, outcome, 500, error)  # type: ignore[arg-type]
    retry_at = NOW + 200 if outcome == "retry" else None
    assert await store.finish(claimed.id, "w1", record, next_attempt_at=retry_at)
    return claimed.id


async def fill(store: Store) -> None:
    """The caller's calls (from, to, held, in a digest), and other calls that mention the
    number or only look like it."""
    await store.ingest(call("mine-in", NOW + 1, deliveries=(single("d-mine-in"),)))
    await attempt(store, "ops", "retry", "503 from CRM")  # d-mine-in: pending, 1 attempt
    await store.ingest(
        call("mine-out", NOW + 2, from_number=AGENT_LINE, to_number=CALLER,
             deliveries=(single("d-mine-out", "crm"),))
    )  # fmt: skip
    await attempt(store, "crm", "delivered")
    await store.ingest_held(call("mine-held", NOW + 3))
    await store.ingest(call("mine-digest", NOW + 4, deliveries=(grouped("dg-1"),)))
    await store.ingest(
        call("other-digest", NOW + 5, from_number=SOMEONE, deliveries=(grouped("dg-2"),))
    )
    await store.ingest(
        call(
            "mentions",
            NOW + 6,
            from_number=SOMEONE,
            summary="Asked us to call back on (415) 555-0142 tomorrow",
            variables={"callback": "+1 415.555.0142", "raw": 4155550142, "tier": "gold"},
            deliveries=(single("d-mentions", "audit"),),
        )
    )
    await attempt(store, "audit", "dead", "CRM refused: duplicate contact 1-415-555-0142")
    await store.ingest(
        call(
            "look-alike",
            NOW + 7,
            from_number=SOMEONE,
            summary=LOOK_ALIKE,
            variables={"n": 4155550143},
        )
    )
    mine = Acknowledgement("call", "mine-in", "rule-a", "U1", "alice", "#ops", NOW + 8)
    await store.acknowledge(mine)
    await store.add_silence(
        SilenceRecord(
            "s-1", json.dumps({"fromNumber": CALLER}), None, NOW, NOW + 3600,
            "caller (415) 555-0142 keeps calling", NOW,
        )
    )  # fmt: skip


EXPECTED = ErasureCounts(
    calls_deleted=4,  # mine-in, mine-out, mine-held, mine-digest
    deliveries_deleted=2,  # d-mine-in (pending), d-mine-out; the digest stays with other-digest
    pending_cancelled=1,
    calls_rewritten=1,  # mentions
    attempts_rewritten=1,  # d-mentions' attempt
    other_rows_rewritten=2,  # d-mentions' last_error; the silence (its condition and comment)
)


async def snapshot(store: Store) -> dict[str, Any]:
    """Everything a person could read of the store."""
    events = await store.list_events(CallFilters(), limit=100)
    deliveries = await store.list_deliveries(limit=100)
    return {
        "events": {e.id: (e.payload, e.from_number, e.to_number) for e in events},
        "deliveries": {d.id: (d.event_id, d.status, d.calls, d.last_error) for d in deliveries},
        "attempts": {d.id: await store.list_attempts(d.id) for d in deliveries},
        "acknowledgements": await store.acknowledgements_since(0),
        "silences": await store.list_silences(),
    }


def forget(number: str, dry_run: bool = False) -> Any:
    return erasure_of(ForgetRequest(number, dry_run))


async def test_a_dry_run_counts_and_changes_nothing(store: Store) -> None:
    await fill(store)
    before = await snapshot(store)

    assert await store.forget(forget(CALLER, dry_run=True)) == EXPECTED

    assert await snapshot(store) == before


async def test_the_callers_calls_go_with_everything_keyed_by_them(store: Store) -> None:
    await fill(store)
    deleted_attempts = await store.list_attempts("d-mine-in")
    assert deleted_attempts

    assert await store.forget(forget(CALLER)) == EXPECTED

    for gone in ("mine-in", "mine-out", "mine-held", "mine-digest"):
        assert await store.get_event(gone) is None
        assert await store.list_deliveries(call=gone) == []
    assert await store.list_events(CallFilters(phone=CALLER)) == []
    for delivery in ("d-mine-in", "d-mine-out"):
        assert await store.get_delivery(delivery) is None
        assert await store.list_attempts(delivery) == []
    assert await store.acknowledgement("call", "mine-in", "rule-a") is None
    assert "ops" not in await store.pending_sinks()


async def test_a_shared_digest_keeps_the_other_calls(store: Store) -> None:
    await fill(store)

    await store.forget(forget(CALLER))

    [digest] = await store.list_deliveries(sink="digest-sink")
    assert (digest.id, digest.event_id, digest.calls) == ("dg-1", "other-digest", 1)
    assert [json.loads(p)["id"] for p in await store.digest_calls("dg-1")] == ["other-digest"]
    assert [d.id for d in await store.deliveries_of_event("other-digest")] == ["dg-1"]
    # It takes no more calls: the next call of the group opens a new digest.
    await store.ingest(call("later", NOW + 20, from_number=SOMEONE, deliveries=(grouped("dg-3"),)))
    assert {d.id for d in await store.list_deliveries(sink="digest-sink")} == {"dg-1", "dg-3"}


async def test_other_rows_show_erased_in_place_of_the_number(store: Store) -> None:
    await fill(store)

    await store.forget(forget(CALLER))

    mentions = await store.get_event("mentions")
    assert mentions is not None and mentions.payload is not None
    body = json.loads(mentions.payload)  # still JSON
    assert body["summary"] == "Asked us to call back on [erased] tomorrow"
    assert body["transcript"][0]["content"] == "Asked us to call back on [erased] tomorrow"
    assert body["variables"] == {"callback": "[erased]", "raw": "[erased]", "tier": "gold"}
    assert body["fromNumber"] == SOMEONE
    found = await store.list_events(CallFilters(words=("[erased]",)))
    assert [e.id for e in found] == ["mentions"]
    assert await store.list_events(CallFilters(words=("555-0142",))) == []
    [attempt_row] = await store.list_attempts("d-mentions")
    assert attempt_row.error == "CRM refused: duplicate contact [erased]"
    delivery = await store.get_delivery("d-mentions")
    assert delivery is not None and delivery.last_error == attempt_row.error
    [silence] = await store.list_silences()
    assert json.loads(silence.when) == {"fromNumber": "[erased]"}
    assert silence.comment == "caller [erased] keeps calling"


async def test_numbers_that_only_look_alike_are_left_alone(store: Store) -> None:
    await fill(store)
    before = await store.get_event("look-alike")

    await store.forget(forget(CALLER))

    assert await store.get_event("look-alike") == before
    assert before is not None and before.payload is not None
    assert LOOK_ALIKE in before.payload.decode()


async def test_a_number_nobody_called_from_changes_nothing(store: Store) -> None:
    await fill(store)
    before = await snapshot(store)

    assert await store.forget(forget("+16505550100")) == ErasureCounts()

    assert await snapshot(store) == before


async def test_the_salt_is_made_once_per_store(store: Store) -> None:
    first = await store.secret(SALT_SETTING)
    assert len(first) == 64
    assert await store.secret(SALT_SETTING) == first
    assert await store.secret("another") != first


async def test_a_lease_holder_cannot_bring_a_forgotten_delivery_back(store: Store) -> None:
    await store.ingest(call("mine", NOW, deliveries=(single("d-mine"),)))
    [claimed] = await store.claim("ops", 1, "w1", 30.0, NOW + 1)

    counts = await store.forget(forget(CALLER))
    assert (counts.deliveries_deleted, counts.pending_cancelled) == (1, 1)

    assert not await store.still_leased(claimed.id, "w1")
    record = AttemptRecord(1, NOW + 2, 0.1, "retry", 503, "HTTP 503")
    assert not await store.finish(claimed.id, "w1", record, next_attempt_at=NOW + 60)
    await store.defer(claimed.id, "w1", NOW + 3)
    await store.renew_leases([claimed.id], "w1", NOW + 60)
    await store.kill(claimed.id, "w1", "gone")
    assert not await store.mute(claimed.id, "w1", "silence:x", NOW + 4)
    assert not await store.replay(claimed.id, NOW + 5)
    assert await store.list_deliveries() == []
    assert await store.list_attempts(claimed.id) == []
    assert await store.claim("ops", 10, "w2", 30.0, NOW + 3600) == []
    assert await store.pending_sinks() == set()


async def test_a_call_that_came_in_after_the_scan_is_rewritten_too(store: Store) -> None:
    """The scan of every body runs before the erasure's transaction; that transaction reads
    the calls received since then again (here: a scan that found nothing)."""
    from router.store.erasure import Scan
    from router.store.erasure import forget as forget_script
    from router.store.queue import QueueStore

    assert isinstance(store, QueueStore)
    mention = "call back on 415-555-0142"
    await store.ingest(call("old", NOW, from_number=SOMEONE, summary=mention))
    await store.ingest(call("new", NOW + 60, from_number=SOMEONE, summary=mention))
    erasure = forget(CALLER)

    counts = await store.connector.write(lambda: forget_script(erasure, Scan([], NOW + 30)))

    assert counts.calls_rewritten == 1
    new, old = await store.get_event("new"), await store.get_event("old")
    assert new is not None and new.payload is not None and b"[erased]" in new.payload
    assert old is not None and old.payload is not None and b"555-0142" in old.payload
    assert (await store.forget(erasure)).calls_rewritten == 1  # the scan finds "old"


async def test_a_digest_grouped_by_a_value_that_holds_the_number_loses_it(store: Store) -> None:
    key = json.dumps({"variables.callback": "(415) 555-0142"})
    grouped_by_callback = NewDelivery("dg-cb", "digest-sink", "by-callback", GroupJoin(key, 600.0))
    await store.ingest(call("someone", NOW, from_number=SOMEONE, deliveries=(grouped_by_callback,)))

    counts = await store.forget(forget(CALLER))

    assert counts.other_rows_rewritten == 1
    # It no longer takes that number's calls: the next one opens a digest of its own.
    later = NewDelivery("dg-cb-2", "digest-sink", "by-callback", GroupJoin(key, 600.0))
    await store.ingest(call("later", NOW + 10, from_number=SOMEONE, deliveries=(later,)))
    assert {d.id for d in await store.list_deliveries(sink="digest-sink")} == {"dg-cb", "dg-cb-2"}
    claimed = {d.id: d for d in await store.claim("digest-sink", 2, "w1", 30.0, NOW + 3600)}
    assert json.loads(claimed["dg-cb"].group_key or "") == {"variables.callback": "[erased]"}


async def test_a_shared_digest_held_by_a_worker_is_claimed_again_without_the_caller(
    store: Store,
) -> None:
    await store.ingest(call("mine-digest", NOW, deliveries=(grouped("dg-1"),)))
    await store.ingest(call("other", NOW + 1, from_number=SOMEONE, deliveries=(grouped("dg-2"),)))
    [held] = await store.claim("digest-sink", 1, "w1", 30.0, NOW + 3600)
    assert len(await store.digest_calls(held.id)) == 2  # what the worker read

    await store.forget(forget(CALLER))

    assert not await store.still_leased(held.id, "w1"), "the worker must not send what it read"
    [again] = await store.claim("digest-sink", 1, "w2", 30.0, NOW + 3601)
    assert again.id == held.id and again.event_id == "other"
    assert json.loads(again.payload)["id"] == "other"
    assert [json.loads(p)["id"] for p in await store.digest_calls(again.id)] == ["other"]


async def test_a_worker_holding_a_rewritten_call_sends_it_only_once_claimed_again(
    store: Store,
) -> None:
    summary = "Asked us to call back on (415) 555-0142"
    await store.ingest(call("mentions", NOW, from_number=SOMEONE, summary=summary,
                            deliveries=(single("d-mentions"),)))  # fmt: skip
    [held] = await store.claim("ops", 1, "w1", 30.0, NOW + 1)
    assert b"555-0142" in held.payload  # what the worker holds

    await store.forget(forget(CALLER))

    assert not await store.still_leased(held.id, "w1"), "the old body must not go out"
    [again] = await store.claim("ops", 1, "w2", 30.0, NOW + 2)
    assert json.loads(again.payload)["summary"] == "Asked us to call back on [erased]"


async def test_lease_checks_asked_at_once_are_each_answered(store: Store) -> None:
    """`still_leased` asks of one turn of the loop share one read; each gets its answer."""
    import asyncio

    for n in range(3):
        await store.ingest(call(f"c{n}", NOW + n, from_number=SOMEONE,
                                deliveries=(single(f"d{n}", f"sink-{n}"),)))  # fmt: skip
    await store.claim("sink-0", 1, "w1", 30.0, NOW + 10)
    await store.claim("sink-1", 1, "w2", 30.0, NOW + 10)
    asks = [("d0", "w1"), ("d0", "w2"), ("d1", "w2"), ("d2", "w1"), ("missing", "w1")]
    answers = await asyncio.gather(*(store.still_leased(d, owner) for d, owner in asks))
    assert answers == [True, False, True, False, False]


async def test_an_attempts_request_and_response_lose_the_number(store: Store) -> None:
    """What an attempt sent and got is stored masked; a number written in a way the
    masking missed is still erased there (the heads stay JSON)."""
    await store.ingest(
        call("mentioned", NOW + 1, from_number=SOMEONE, deliveries=(single("d-x", "crm"),))
    )
    [claimed] = await store.claim("crm", 1, "w1", 30.0, NOW + 100)
    exchange = Exchange(
        SentRequest(
            "POST",
            "https://crm.example.com/contacts?phone=4155550142",
            (("X-Caller", "415.555.0142"),),
            '{"note": "call back (415) 555-0142"}',
        ),
        ReceivedResponse(409, (("X-Dup", "+14155550142"),), "duplicate: +1 415 555 0142"),
    )
    record = AttemptRecord(1, NOW + 100, 0.1, "dead", 409, "duplicate", exchange=exchange)
    assert await store.finish(claimed.id, "w1", record)

    counts = await store.forget(forget(CALLER))

    assert counts.attempts_rewritten == 1
    [kept] = await store.list_attempts("d-x")
    assert kept.exchange is not None and kept.exchange.response is not None
    assert kept.exchange.request.target == "https://crm.example.com/contacts?phone=[erased]"
    assert kept.exchange.request.headers == (("X-Caller", "[erased]"),)
    assert kept.exchange.request.body == '{"note": "call back [erased]"}'
    assert kept.exchange.response.headers == (("X-Dup", "[erased]"),)
    assert kept.exchange.response.body == "duplicate: [erased]"


async def test_a_slack_thread_keyed_or_worded_by_the_number_loses_it(store: Store) -> None:
    from router.store import SlackThread

    key = json.dumps({"fromNumber": CALLER}, separators=(",", ":"))
    parent = json.dumps({"text": f"FAILED call from {CALLER}"})
    await store.start_thread(SlackThread("ops-slack", key, "C1", "1.1", parent, 0, NOW), NOW - 1)
    other = json.dumps({"fromNumber": SOMEONE}, separators=(",", ":"))
    await store.start_thread(SlackThread("ops-slack", other, "C1", "1.2", "{}", 0, NOW), NOW - 1)

    await store.forget(forget(CALLER))

    assert await store.thread("ops-slack", key, NOW - 1) is None
    erased = await store.thread("ops-slack", '{"fromNumber":"[erased]"}', NOW - 1)
    assert erased is not None and json.loads(erased.parent) == {"text": "FAILED call from [erased]"}
    assert await store.thread("ops-slack", other, NOW - 1) is not None
