"""`answer_within`: the store deadline of the webhook and /readyz."""

from __future__ import annotations

import asyncio

import pytest

from router.engine.health import answer_within


async def test_the_result_of_a_coroutine_comes_back() -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return "stored"

    assert await answer_within(work(), 5) == "stored"


async def test_a_future_is_awaited_as_it_is() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, 7)
    assert await answer_within(future, 5) == 7


async def test_an_error_of_the_work_reaches_the_caller() -> None:
    async def work() -> None:
        await asyncio.sleep(0)
        raise LookupError("no such row")

    with pytest.raises(LookupError, match="no such row"):
        await answer_within(work(), 5)


async def test_a_late_answer_is_a_timeout_and_the_work_is_not_waited_for() -> None:
    """A frozen store may never honour the cancel: the caller gets its TimeoutError while
    the abandoned work is still running."""
    release = asyncio.Event()
    finished = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # ignores the cancel until released
        finally:
            finished.set()

    task = asyncio.ensure_future(stubborn())
    with pytest.raises(TimeoutError, match=r"within 0\.01 s"):
        await answer_within(task, 0.01)
    await asyncio.sleep(0)
    assert not finished.is_set()
    release.set()
    await finished.wait()
    assert task.cancelled() or task.done()


async def test_a_cancelled_caller_cancels_the_work() -> None:
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(3600)

    work_task = asyncio.ensure_future(work())
    caller = asyncio.ensure_future(answer_within(work_task, 3600))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    with pytest.raises(asyncio.CancelledError):
        await work_task


async def test_no_timer_is_left_behind() -> None:
    """Each call leaves no pending timer behind (one per webhook request would pile up)."""
    loop = asyncio.get_running_loop()

    async def work() -> int:
        await asyncio.sleep(0)
        return 1

    before = len(loop._scheduled)  # type: ignore[attr-defined]
    for _ in range(50):
        await answer_within(work(), 3600)
    cancelled_or_gone = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
    assert len(cancelled_or_gone) <= before
