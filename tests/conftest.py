"""Shared test helpers: sample events, a rules.yaml writer, a local HTTP receiver and a
fake of RevRing's API."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.receivers import Receiver
from tests.revring_fake import FakeRevRing

# The machines that run the suite are shared and loaded: a property test is judged on its
# examples, never on how long one took (speed is measured in bench/).
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"


def sample(name: str) -> dict[str, Any]:
    """A sample body from samples/ (failed-outbound, completed-inbound, ...)."""
    return json.loads((SAMPLES_DIR / f"{name}.json").read_text())


def fresh_event(name: str = "failed-outbound", **changes: Any) -> dict[str, Any]:
    """A sample body with a new call id and the given fields changed."""
    event = copy.deepcopy(sample(name))
    event["id"] = str(uuid.uuid4())
    event.update(changes)
    return event


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A local HTTP receiver (a CRM or any webhook endpoint) on a real socket."""
    started = await Receiver().start()
    yield started
    await started.close()


@pytest.fixture
async def revring() -> AsyncIterator[FakeRevRing]:
    """A fake of RevRing's API on a real socket (tests/revring_fake.py), stopped after the test."""
    fake = await FakeRevRing().start()
    yield fake
    await fake.stop()


@pytest.fixture
def samples() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in SAMPLES_DIR.glob("*.json")}


@pytest.fixture
def write_rules(tmp_path: Path):
    def write(text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
async def anyio_backend() -> AsyncIterator[str]:
    yield "asyncio"
