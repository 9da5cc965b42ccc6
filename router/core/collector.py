"""Python's cyclic garbage collector, set for a long-running service.

Almost everything a request allocates is freed by reference counting; the collector
only has to find cycles, which are rare here. Once the service is set up, the objects
that live as long as the process (modules, the compiled rules, the app) are moved out of
the collector's sight (`gc.freeze`), so a full collection no longer walks them, and a
young collection waits for 7,000 net new container objects instead of 700. Frozen
objects are still freed by reference counting. Why and what it saved: bench/README.md,
"The collector settled after start-up".
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 7_000  # net new container objects before a young collection (default 700)
OLDER_THRESHOLDS = (20, 20)  # collections of the younger generation before an older one


def settle_after_start() -> None:
    """Freeze what exists now and raise the young generation's threshold. Called once
    the service is set up, before it takes traffic."""
    gc.collect()  # what start-up left as garbage goes now, not into the frozen set
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
