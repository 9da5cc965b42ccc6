"""`router.core.collector`: the collector settings `serve` applies once it is set up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from router.core.collector import OLDER_THRESHOLDS, YOUNG_THRESHOLD, settle_after_start


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_objects_of_start_up_are_frozen_and_the_threshold_raised(restored_collector) -> None:
    lasting = [{"rule": n} for n in range(1000)]  # like the compiled rules: they stay
    settle_after_start()
    assert gc.get_freeze_count() >= len(lasting)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def test_a_cycle_made_after_start_up_is_still_collected(restored_collector) -> None:
    settle_after_start()
    collected: list[str] = []

    class Node:
        def __del__(self) -> None:
            collected.append("node")

    first, second = Node(), Node()
    first.other, second.other = second, first  # type: ignore[attr-defined]
    del first, second
    gc.collect()
    assert collected == ["node", "node"]
