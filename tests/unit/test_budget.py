"""The byte budget of requests being parsed at once (router/engine/budget.py)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.engine.budget import ByteBudget


async def test_a_burst_waits_in_order_and_all_of_it_goes_through() -> None:
    budget = ByteBudget(10)
    inside, most_inside, order = 0, 0, []

    async def request(name: int, size: int) -> None:
        nonlocal inside, most_inside
        async with budget.hold(size):
            inside += size
            most_inside = max(most_inside, inside)
            order.append(name)
            await asyncio.sleep(0)
            inside -= size

    await asyncio.gather(*(request(n, 4) for n in range(9)))
    assert order == list(range(9))
    assert most_inside <= 10
    assert budget.available == 10


async def test_a_request_larger_than_the_budget_goes_alone() -> None:
    budget = ByteBudget(10)
    async with budget.hold(50):
        assert budget.available == 0
    assert budget.available == 10


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    budget = ByteBudget(10)
    async with budget.hold(8):
        big = asyncio.create_task(_hold(budget, 10))
        small = asyncio.create_task(_hold(budget, 2))
        await asyncio.sleep(0)
        assert not small.done()  # first come, first served: it waits behind `big`
        big.cancel()
        await asyncio.wait_for(small, 5)
    with pytest.raises(asyncio.CancelledError):
        await big
    assert budget.available == 10


async def _hold(budget: ByteBudget, size: int) -> None:
    async with budget.hold(size):
        await asyncio.sleep(0)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 20), st.lists(st.integers(0, 30), min_size=1, max_size=20))
def test_the_budget_is_never_exceeded_and_always_refilled(capacity: int, sizes: list[int]):
    async def run() -> int:
        budget = ByteBudget(capacity)
        held = []

        async def request(size: int) -> None:
            async with budget.hold(size):
                held.append(capacity - budget.available)
                await asyncio.sleep(0)

        await asyncio.gather(*(request(size) for size in sizes))
        assert all(amount <= capacity for amount in held)
        return budget.available

    assert asyncio.run(run()) == capacity


def test_a_budget_needs_room() -> None:
    with pytest.raises(ValueError):
        ByteBudget(0)


async def test_a_small_take_waits_behind_a_waiter() -> None:
    budget = ByteBudget(10)
    first = budget.take_now(8)
    assert first is not None
    queued = asyncio.ensure_future(_held(budget, 5))
    await asyncio.sleep(0)
    assert not queued.done()
    assert budget.take_now(1) is None, "someone waits: no taking past them, though 2 fit"
    budget.give_back(first)
    await queued
    assert budget.available == 10
    assert budget.take_now(50) == 10  # larger than the budget: all of it, alone


async def _held(budget: ByteBudget, size: int) -> None:
    async with budget.hold(size):
        await asyncio.sleep(0)
