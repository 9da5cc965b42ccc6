"""The sample post-call events shipped with the router (for `check`, the console's
playground and the docs): copies of `samples/` at the repository root, kept as package
data so an installed router has them too."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from router.core.call_fields import REQUIRED_FIELDS

SAMPLES_DIRECTORY = "sample_calls"
SAMPLE_NAMES = (
    "completed-inbound",
    "failed-outbound",
    "voicemail-outbound",
    "minimal-canceled",
)
DEFAULT_SAMPLE = SAMPLE_NAMES[0]


def sample_call(name: str) -> dict[str, Any]:
    """A fresh copy of the sample call `name` (one of `SAMPLE_NAMES`)."""
    if name not in SAMPLE_NAMES:
        raise KeyError(f"no sample call {name!r}; there are {', '.join(SAMPLE_NAMES)}")
    resource = resources.files("router.core").joinpath(SAMPLES_DIRECTORY, f"{name}.json")
    event: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return event


def sample_event() -> dict[str, Any]:
    """A fresh copy of the sample event: a completed inbound call with every field set."""
    return sample_call(DEFAULT_SAMPLE)


def sparse_call() -> dict[str, Any]:
    """The sample event with only the fields RevRing's schema requires: what every call
    has, and no more."""
    event = sample_event()
    return {name: event[name] for name in REQUIRED_FIELDS}
