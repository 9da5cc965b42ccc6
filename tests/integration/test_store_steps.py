"""An `http` sink's steps in the store (migration 17), the same in every store kind
(`conftest.STORE_KINDS`: memory, SQLite, PostgreSQL): an attempt keeps each step's
outcome, shown captures and exchange; the delivery keeps the steps done for the next
claim, which resumes after them; a delivered delivery forgets them (a replay runs the
flow again); garbage in the columns reads as nothing done."""

from __future__ import annotations

from router.store import (
    AttemptRecord,
    Exchange,
    IngestRecord,
    NewDelivery,
    ReceivedResponse,
    SentRequest,
    StepOutcome,
    Store,
    resume_state,
)

NOW = 1_700_000_000.0
SENT = Exchange(
    SentRequest("POST", "https://api.example/crm/***", (("Idempotency-Key", "d:find"),), "{}", 2),
    ReceivedResponse(200, (), '{"results":[{"id":"501"}]}', 26),
)


async def queued(store: Store, event_id: str) -> str:
    delivery = f"{event_id}:crm"
    record = IngestRecord(event_id, b'{"id": "%s"}' % event_id.encode(), NOW, [])
    record.deliveries.append(NewDelivery(delivery, "crm", "all-calls"))
    assert (await store.ingest(record)).deliveries == 1
    return delivery


async def test_a_retry_resumes_after_the_steps_done_and_delivered_forgets_them(
    store: Store,
) -> None:
    delivery = await queued(store, "steps-1")
    [claimed] = await store.claim("crm", 10, "w", 30.0, NOW)
    assert claimed.steps is None
    first = (
        StepOutcome("find", "done", {"contact": None}, {"contact": None}, SENT),
        StepOutcome("create", "done", {"contact": "+14155550123"}, {"contact": "+1415•••0123"}),
        StepOutcome("log", "failed", exchange=SENT),
    )
    attempt = AttemptRecord(1, NOW, 0.1, "retry", 503, "step 'log': HTTP 503", steps=first)
    assert await store.finish(delivery, "w", attempt, next_attempt_at=NOW + 1)

    [again] = await store.claim("crm", 10, "w", 30.0, NOW + 2)
    assert resume_state(again.steps) == {
        "find": ("done", {"contact": None}),
        "create": ("done", {"contact": "+14155550123"}),  # as captured: the next step's
    }
    second = (
        StepOutcome("find", "done", {"contact": None}, {"contact": None}, earlier=True),
        StepOutcome("create", "done", {"contact": "x"}, {"contact": "+1415•••0123"}, earlier=True),
        StepOutcome("log", "done", exchange=SENT),
    )
    assert await store.finish(
        delivery, "w", AttemptRecord(2, NOW + 2, 0.1, "delivered", 201, steps=second)
    )

    failed, delivered = await store.list_attempts(delivery)
    assert [(s.name, s.outcome, s.earlier) for s in failed.steps] == [
        ("find", "done", False),
        ("create", "done", False),
        ("log", "failed", False),
    ]
    assert failed.steps[1].shown == {"contact": "+1415•••0123"}
    assert failed.steps[1].captures == {}  # an attempt keeps only what may be shown
    assert failed.steps[0].exchange == SENT and failed.steps[2].exchange == SENT
    assert [s.earlier for s in delivered.steps] == [True, True, False]

    # Delivered: the flow is done; a replay runs it whole again.
    assert await store.replay(delivery, NOW + 3)
    [replayed] = await store.claim("crm", 10, "w", 30.0, NOW + 4)
    assert replayed.steps is None


async def test_an_attempt_of_a_sink_without_steps_stores_none(store: Store) -> None:
    delivery = await queued(store, "steps-2")
    await store.claim("crm", 10, "w", 30.0, NOW)
    assert await store.finish(
        delivery, "w", AttemptRecord(1, NOW, 0.1, "retry", 500), next_attempt_at=NOW
    )
    [again] = await store.claim("crm", 10, "w", 30.0, NOW + 1)
    assert again.steps is None
    [attempt] = await store.list_attempts(delivery)
    assert attempt.steps == ()


async def test_forgetting_a_caller_erases_the_number_from_anothers_captured_steps(
    store: Store,
) -> None:
    from router.operators import ForgetRequest
    from router.operators.forget import erasure_of

    delivery = await queued(store, "steps-3")
    await store.claim("crm", 10, "w", 30.0, NOW)
    captured = (StepOutcome("find", "done", {"phone": "+14155550123"}, {"phone": "+1415•••0123"}),)
    attempt = AttemptRecord(1, NOW, 0.1, "retry", 503, steps=captured)
    assert await store.finish(delivery, "w", attempt, next_attempt_at=NOW)
    counts = await store.forget(erasure_of(ForgetRequest("+14155550123")))
    assert counts.other_rows_rewritten >= 1
    [again] = await store.claim("crm", 10, "w", 30.0, NOW + 1)
    assert "4155550123" not in (again.steps or "")
    assert resume_state(again.steps)["find"][0] == "done"
