"""The sample post-call event shipped with the router (for `check` and the docs)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SAMPLE_EVENT_RESOURCE = "sample_event.json"


def sample_event() -> dict[str, Any]:
    """A fresh copy of the sample event: a completed inbound call with every field set."""
    text = resources.files("router").joinpath(SAMPLE_EVENT_RESOURCE).read_text(encoding="utf-8")
    event: dict[str, Any] = json.loads(text)
    return event
